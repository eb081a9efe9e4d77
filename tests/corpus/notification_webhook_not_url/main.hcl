deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}

variable "hook" {
  sensitive = true
  default   = "hooks.slack.com/services/T000"
}
