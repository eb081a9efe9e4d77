pipeline "etl" {
  block "load" {
    type = "data_loader"
    code = <<-EOT
      @data_loader
      async def load(*args, **kwargs):
          return 1
    EOT
  }
}
