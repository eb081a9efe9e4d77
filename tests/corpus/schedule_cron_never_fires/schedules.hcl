schedule "nightly" {
  pipeline = pipeline.etl
  cron     = "0 0 31 2 *"
}
