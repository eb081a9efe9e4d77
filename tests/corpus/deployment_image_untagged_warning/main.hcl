deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai"
  mage_version = "0.9.80"
}
