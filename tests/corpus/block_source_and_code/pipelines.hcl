pipeline "etl" {
  block "load" {
    type = "data_loader"
    source = "blocks/load.py"
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }
}
