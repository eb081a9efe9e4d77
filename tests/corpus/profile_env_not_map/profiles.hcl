resource_profile "main" {
  env = "PYTHONUNBUFFERED=1"
}
