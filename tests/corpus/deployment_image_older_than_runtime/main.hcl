deployment "prod" {
  target  = "gcp"
  project = "my-project-123"
  region  = "us-central1"
  image   = "mageai/mageai:0.8.50"

  scheduler {
    zone = "us-central1-a"
  }

  storage {
    bucket = "my-project-123-mage"
  }
}
