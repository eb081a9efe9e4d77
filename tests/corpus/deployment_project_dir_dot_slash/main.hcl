deployment "dev" {
  target      = "local"
  project_dir = "./"
  image       = "mageai/mageai:0.9.80"
}
