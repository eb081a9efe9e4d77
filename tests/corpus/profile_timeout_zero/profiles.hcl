resource_profile "main" {
  timeout = "0s"
}
