pipeline "etl" {
  profile = "standard"

  block "load" {
    type = "data_loader"
    profile = resource_profile.standard
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }
}
