schedule "nightly" {
  pipeline            = pipeline.etl
  cron                = "@daily"
  max_concurrent_runs = 0
}
