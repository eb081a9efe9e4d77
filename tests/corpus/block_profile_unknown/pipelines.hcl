pipeline "etl" {
  block "load" {
    type = "data_loader"
    profile = resource_profile.hghmem
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }
}
