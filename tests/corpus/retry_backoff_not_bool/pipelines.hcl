pipeline "etl" {
  block "load" {
    type = "data_loader"

    retry {
      exponential_backoff = "always"
    }

    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }
}
