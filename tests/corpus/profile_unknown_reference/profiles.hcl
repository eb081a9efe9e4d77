resource_profile "standard" {
  cpu = 1
}
