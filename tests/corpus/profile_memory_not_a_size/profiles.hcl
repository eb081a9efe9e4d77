resource_profile "main" {
  memory = "lots"
}
