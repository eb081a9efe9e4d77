resource_profile "main" {
  cpu    = 8
  memory = "64Gi"
}
