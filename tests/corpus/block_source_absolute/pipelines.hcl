pipeline "etl" {
  block "load" {
    type   = "data_loader"
    source = "/etc/passwd"
  }
}
