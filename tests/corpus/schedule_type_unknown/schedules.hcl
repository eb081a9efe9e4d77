schedule "nightly" {
  pipeline = pipeline.etl
  type     = "cron"
  cron     = "@daily"
}
