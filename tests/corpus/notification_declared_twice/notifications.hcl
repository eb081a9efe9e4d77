notification "alerts" {
  channel     = "slack"
  webhook_url = var.slack_webhook
}

notification "alerts" {
  channel     = "slack"
  webhook_url = var.slack_webhook
}
