resource_profile "main" {
  max_retries = 1.5
}
