pipeline "etl" {
  block "load" {
    type = "dataloader"
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }
}
