pipeline "etl" {
  block "load" {
    type = "data_loader"
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }

  condition "only_weekdays" {
    gates = [block.load]
    code = <<-EOT
      @transformer
      def only_weekdays(*args, **kwargs):
          return True
    EOT
  }
}
