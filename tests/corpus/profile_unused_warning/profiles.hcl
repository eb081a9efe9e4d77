resource_profile "spare" {
  cpu = 1
}
