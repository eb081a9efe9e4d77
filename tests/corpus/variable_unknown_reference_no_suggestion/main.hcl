deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = var.image
}
