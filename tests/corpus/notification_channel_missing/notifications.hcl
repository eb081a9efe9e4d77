notification "alerts" {
  webhook_url = var.slack_webhook
}
