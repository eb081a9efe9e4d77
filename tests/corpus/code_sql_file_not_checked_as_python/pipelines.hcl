pipeline "etl" {
  block "load" {
    type   = "data_loader"
    source = "blocks/load.sql"
  }
}
