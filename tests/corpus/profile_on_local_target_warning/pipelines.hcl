resource_profile "big" {
  cpu    = 2
  memory = "4Gi"
}

pipeline "etl" {
  block "load" {
    type    = "data_loader"
    profile = resource_profile.big
    code    = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }
}
