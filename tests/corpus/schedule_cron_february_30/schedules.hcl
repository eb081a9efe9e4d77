schedule "nightly" {
  pipeline = pipeline.etl
  cron     = "0 0 30 2 *"
}
