pipeline "etl" {
  block "load" {
    type = "data_loader"
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }

  callback "load" {
    on = [block.load]
    code = <<-EOT
      @callback
      def load(*args, **kwargs):
          return True
    EOT
  }
}
