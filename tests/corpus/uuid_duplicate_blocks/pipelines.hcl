pipeline "etl" {
  block "load" {
    type = "data_loader"
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }

  block "load" {
    type = "transformer"
    code = <<-EOT
      @transformer
      def load(*args, **kwargs):
          return 1
    EOT
  }
}
