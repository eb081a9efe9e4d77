resource_profile "main" {
  timeout = "10 minutes"
}
