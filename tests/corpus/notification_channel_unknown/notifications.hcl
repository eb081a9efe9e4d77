notification "alerts" {
  channel     = "slak"
  webhook_url = var.slack_webhook
}
