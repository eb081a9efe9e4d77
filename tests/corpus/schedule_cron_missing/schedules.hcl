schedule "nightly" {
  pipeline = pipeline.etl
}
