# Schedules become Mage triggers. Crons are 5-field and in UTC; `weir plan` shows the next run times.

schedule "orders_nightly" {
  pipeline        = pipeline.orders_etl
  cron            = "0 3 * * *"
  start           = "2026-01-01T00:00:00Z"
  sla             = "1h"
  timeout         = "2h"
  skip_if_running = true
}

# Triggered by an HTTP call, with its own variables: re-runs a day without exporting it.
schedule "orders_dry_run" {
  pipeline = pipeline.orders_etl
  type     = "api"

  variables = {
    dry_run = true
  }
}

schedule "shop_scores_daily" {
  pipeline             = pipeline.shop_scores
  cron                 = "@daily"
  allow_blocks_to_fail = true
  max_concurrent_runs  = 1
}

# Weekdays at 04:30 UTC, after the nightly export; the sensor waits if it is late.
schedule "orders_report_weekdays" {
  pipeline = pipeline.orders_report
  cron     = "30 4 * * 1-5"
  sla      = "3h"
}
