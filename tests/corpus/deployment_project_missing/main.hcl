deployment "prod" {
  target  = "gcp"
  region  = "us-central1"
  image   = "mageai/mageai:0.9.80"

  scheduler {
    zone = "us-central1-a"
  }

  storage {
    bucket = "acme-mage"
  }
}
