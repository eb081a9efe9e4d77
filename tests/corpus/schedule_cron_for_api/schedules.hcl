schedule "nightly" {
  pipeline = pipeline.etl
  type     = "api"
  cron     = "@daily"
}
