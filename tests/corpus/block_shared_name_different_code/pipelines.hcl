pipeline "orders" {
  block "load" {
    type = "data_loader"
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return "orders"
    EOT
  }
}

pipeline "shops" {
  block "load" {
    type = "data_loader"
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return "shops"
    EOT
  }
}
