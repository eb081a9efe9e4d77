resource_profile "main" {
  cpu = 1
}

resource_profile "main" {
  cpu = 2
}
