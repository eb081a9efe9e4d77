deployment "dev" {
  target      = "local"
  project_dir = "../elsewhere/mage_project"
  image       = "mageai/mageai:0.9.80"
}
