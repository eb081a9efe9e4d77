resource_profile "main" {
  max_retries = 11
}
