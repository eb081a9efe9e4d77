pipeline "etl" {
  block "load" {
    type = "data_loader"
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }

  block "clean" {
    type = "transformer"
    upstream = [block.load]
    code = <<-EOT
      @transformer
      def clean(*args, **kwargs):
          return 1
    EOT
  }
}
