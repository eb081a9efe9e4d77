deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}
