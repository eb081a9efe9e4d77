region = "us-east1
