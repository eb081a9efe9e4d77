pipeline "etl" {
  block "load" {
    type = "data_loader"
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }

  condition "load" {
    gates = [block.load]
    code = <<-EOT
      @condition
      def load(*args, **kwargs):
          return True
    EOT
  }
}
