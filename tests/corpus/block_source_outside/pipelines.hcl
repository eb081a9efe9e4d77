pipeline "etl" {
  block "load" {
    type   = "data_loader"
    source = "../shared/load.py"
  }
}
