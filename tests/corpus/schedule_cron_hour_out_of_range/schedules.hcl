schedule "nightly" {
  pipeline = pipeline.etl
  cron     = "0 25 * * *"
}
