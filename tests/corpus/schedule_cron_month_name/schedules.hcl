schedule "nightly" {
  pipeline = pipeline.etl
  cron     = "0 3 1 FOO *"
}
