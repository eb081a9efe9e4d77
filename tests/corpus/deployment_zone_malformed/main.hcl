deployment "prod" {
  target  = "gcp"
  project = "acme-data-prod"
  region  = "us-central1"
  image   = "mageai/mageai:0.9.80"

  scheduler {
    zone = "central"
  }

  storage {
    bucket = "acme-mage"
  }
}
