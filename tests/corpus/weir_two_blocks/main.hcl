weir {
  required_version = ">= 0.1"
}

weir {
}

deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}
