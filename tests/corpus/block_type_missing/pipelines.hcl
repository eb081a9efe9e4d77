pipeline "etl" {
  block "load" {
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }
}
