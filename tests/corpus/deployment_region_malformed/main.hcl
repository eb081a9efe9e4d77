deployment "prod" {
  target  = "gcp"
  project = "acme-data-prod"
  region  = "central-us"
  image   = "mageai/mageai:0.9.80"

  storage {
    bucket = "acme-mage"
  }
}
