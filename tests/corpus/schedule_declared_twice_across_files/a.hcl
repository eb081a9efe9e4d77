schedule "nightly" {
  pipeline = pipeline.etl
  cron     = "@daily"
}
