weir {
  backend "local" {
    path = "state.json"
  }

  backend "gcs" {
    bucket = "acme-weir-state"
  }
}

deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}
