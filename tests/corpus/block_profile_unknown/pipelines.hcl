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

  block "clean" {
    type = "transformer"
    upstream = [block.load]
    profile  = resource_profile.highmem
    code = <<-EOT
      @transformer
      def clean(*args, **kwargs):
          return 1
    EOT
  }
}
