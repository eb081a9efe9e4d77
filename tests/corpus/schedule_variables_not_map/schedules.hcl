schedule "nightly" {
  pipeline  = pipeline.etl
  cron      = "@daily"
  variables = "dry_run=true"
}
