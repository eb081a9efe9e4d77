weir {
  backend "gcs" {
    bucket = "acme-weir-state"
    prefix = "mage/../prod"
  }
}

deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}
