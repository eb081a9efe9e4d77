schedule "nightly" {
  pipeline = pipeline.etls
  cron     = "@daily"
}
