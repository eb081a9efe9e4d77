region = "us-central1"
