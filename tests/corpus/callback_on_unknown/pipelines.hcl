pipeline "etl" {
  block "load" {
    type = "data_loader"
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }

  callback "notify" {
    on = [block.loader]
    code = <<-EOT
      @callback
      def notify(*args, **kwargs):
          return True
    EOT
  }
}
