deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}

variable "region" {
  default = "us-central1"
}

variable "region" {
  default = "us-east1"
}
