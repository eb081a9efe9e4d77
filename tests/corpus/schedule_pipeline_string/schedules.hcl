schedule "nightly" {
  pipeline = "etl"
  cron     = "@daily"
}
