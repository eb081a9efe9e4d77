pipeline "etl" {
  block "a" {
    type = "data_loader"
    upstream = [block.c]
    code = <<-EOT
      @data_loader
      def a(*args, **kwargs):
          return 1
    EOT
  }

  block "b" {
    type = "transformer"
    upstream = [block.a]
    code = <<-EOT
      @transformer
      def b(*args, **kwargs):
          return 1
    EOT
  }

  block "c" {
    type = "transformer"
    upstream = [block.b]
    code = <<-EOT
      @transformer
      def c(*args, **kwargs):
          return 1
    EOT
  }
}
