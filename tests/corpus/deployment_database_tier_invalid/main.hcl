deployment "prod" {
  target  = "gcp"
  project = "acme-data-prod"
  region  = "us-central1"
  image   = "mageai/mageai:0.9.80"

  database {
    tier = "f1-micro"
  }

  scheduler {
    zone = "us-central1-a"
  }

  storage {
    bucket = "acme-mage"
  }
}
