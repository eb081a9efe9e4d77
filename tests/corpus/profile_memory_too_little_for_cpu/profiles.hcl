resource_profile "main" {
  cpu    = 4
  memory = "1Gi"
}
