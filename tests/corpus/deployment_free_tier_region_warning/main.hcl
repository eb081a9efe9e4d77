deployment "prod" {
  target  = "gcp"
  project = "acme-data-prod"
  region  = "europe-west1"
  image   = "mageai/mageai:0.9.80"

  scheduler {
    zone = "europe-west1-b"
  }

  storage {
    bucket = "acme-mage"
  }
}
