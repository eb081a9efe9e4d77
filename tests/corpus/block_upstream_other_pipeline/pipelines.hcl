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

pipeline "report" {
  block "report" {
    type = "data_exporter"
    upstream = [block.clean]
    code = <<-EOT
      @data_exporter
      def report(*args, **kwargs):
          return 1
    EOT
  }
}
