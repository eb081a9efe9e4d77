deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}

variable "a" {
  default = "x"
}

variable "b" {
  default = var.a
}
