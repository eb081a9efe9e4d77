pipeline "etl" {
  block "load" {
    type   = "data_loader"
    source = "../common/load.py"
  }
}
