schedule "nightly" {
  pipeline = pipeline.etl
  cron     = "@daily"
  timeout  = "2w"
}
