resource_profile "main" {
  cpu = 3
}
