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

  block "square" {
    type = "transformer"
    upstream      = [block.split]
    reduce_output = true
    code = <<-EOT
      @transformer
      def square(*args, **kwargs):
          return 1
    EOT
  }

  block "total" {
    type = "transformer"
    upstream      = [block.square]
    reduce_output = true
    code = <<-EOT
      @transformer
      def total(*args, **kwargs):
          return 1
    EOT
  }
}
