schedule "nightly" {
  pipeline = pipeline.etl
  cron     = "@yearly"
}
