notification "alerts" {
  channel     = "slack"
  webhook_url = var.hook
}
