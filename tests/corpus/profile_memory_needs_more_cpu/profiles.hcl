resource_profile "main" {
  cpu    = 1
  memory = "16Gi"
}
