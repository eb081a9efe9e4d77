pipeline "etl" {
  block "load" {
    type = "data_loader"
    language = "r"
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }
}
