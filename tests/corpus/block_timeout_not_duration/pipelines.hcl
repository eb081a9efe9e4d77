pipeline "etl" {
  block "load" {
    type = "data_loader"
    timeout = "15 min"
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }
}
