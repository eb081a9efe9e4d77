deployment "prod" {
  target  = "gcp"
  project = "acme-data-prod"
  region  = "central-us"
  image   = "mageai/mageai:0.9.80"

  scheduler {
    zone = "us-central1-a"
  }

  storage {
    bucket = "acme-mage"
  }
}
