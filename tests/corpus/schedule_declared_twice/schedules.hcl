schedule "nightly" {
  pipeline = pipeline.etl
  cron     = "@daily"
}

schedule "nightly" {
  pipeline = pipeline.etl
  cron     = "0 3 * * *"
}
