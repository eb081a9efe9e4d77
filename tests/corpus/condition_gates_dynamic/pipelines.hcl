pipeline "etl" {
  block "split" {
    type = "data_loader"
    dynamic = true
    code = <<-EOT
      @data_loader
      def split(*args, **kwargs):
          return 1
    EOT
  }

  condition "only_weekdays" {
    gates = [block.split]
    code = <<-EOT
      @condition
      def only_weekdays(*args, **kwargs):
          return True
    EOT
  }
}
