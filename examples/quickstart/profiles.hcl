# Resource profiles: each one becomes a long-lived Cloud Run job that runs the blocks naming it,
# with its own CPU, memory, region and timeout (instead of the web server's size for everything).
# CPU and memory must be a pair Cloud Run allows: see docs/language.md, "Cloud Run limits".

resource_profile "standard" {
  cpu         = 1
  memory      = "2Gi"
  timeout     = "30m"
  max_retries = 1
}

resource_profile "highmem" {
  cpu         = 4
  memory      = "16Gi"
  timeout     = "2h"
  max_retries = 0

  env = {
    PYTHONUNBUFFERED = "1"
    EVENTS_BATCH     = "large"
  }
}
