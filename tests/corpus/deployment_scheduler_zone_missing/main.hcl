deployment "prod" {
  target  = "gcp"
  project = "acme-data-prod"
  region  = "us-central1"
  image   = "mageai/mageai:0.9.80"

  scheduler {
    machine_type = "e2-micro"
  }

  storage {
    bucket = "acme-mage"
  }
}
