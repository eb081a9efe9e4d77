deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}

variable "api_token" {
  type      = string
  sensitive = true
  default   = "tok-3f9a7c1e5b"

  validation {
    condition     = length(var.api_token) > 20
    error_message = "The token is longer than 20 characters."
  }
}
