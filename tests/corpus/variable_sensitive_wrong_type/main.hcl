deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}

variable "api_token" {
  type      = number
  sensitive = true
  default   = "tok-3f9a7c1e5b"
}
