schedule "nightly" {
  pipeline = pipeline.etl
  cron     = "@daily"
  active   = "on"
}
