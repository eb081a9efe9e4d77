schedule "nightly" {
  pipeline = pipeline.etl
  cron     = "@daily"
  start    = "2026-01-01 03:00"
}
