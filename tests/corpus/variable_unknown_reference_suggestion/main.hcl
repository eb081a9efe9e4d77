deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = var.mage_imgae
}

variable "mage_image" {
  default = "mageai/mageai:0.9.80"
}
