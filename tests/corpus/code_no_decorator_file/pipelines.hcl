pipeline "etl" {
  block "clean" {
    type   = "transformer"
    source = "blocks/clean.py"
  }
}
