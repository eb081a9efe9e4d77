schedule "nightly" {
  pipeline = pipeline.etl
  cron     = "@daily"
  sla      = "1 hour"
}
