resource_profile "main" {
  memory = "256Mi"
}
