notification "alerts" {
  channel     = "slack"
  webhook_url = var.slack_webhook
  on          = ["failure", 1]
}
