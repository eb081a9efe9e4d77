resource_profile "highmem" {
  cpu    = 4
  memory = "16Gi"
}
