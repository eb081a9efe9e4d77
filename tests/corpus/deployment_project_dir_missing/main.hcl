deployment "dev" {
  target      = "local"
  image       = "mageai/mageai:0.9.80"
}
