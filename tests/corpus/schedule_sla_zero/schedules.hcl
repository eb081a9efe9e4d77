schedule "nightly" {
  pipeline = pipeline.etl
  cron     = "@daily"
  sla      = "0m"
}
