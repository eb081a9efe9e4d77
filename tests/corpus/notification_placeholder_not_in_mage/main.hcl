deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"

  runtime {
    enabled = false
  }
}

variable "slack_webhook" {
  type      = string
  sensitive = true
  default   = "https://hooks.slack.com/services/T000/B000/XXXX"
}
