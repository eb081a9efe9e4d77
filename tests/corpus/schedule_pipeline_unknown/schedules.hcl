schedule "nightly" {
  pipeline = pipeline.elt
  cron     = "@daily"
}
