deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}

variable "project" {
  type    = string
  default = "acme"

  validation {
    condition     = length(var.project) >= 6
    error_message = "A GCP project id has at least 6 characters."
  }
}
