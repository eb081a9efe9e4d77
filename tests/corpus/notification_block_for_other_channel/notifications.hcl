notification "alerts" {
  channel     = "slack"
  webhook_url = var.slack_webhook

  opsgenie {
    url     = "https://api.opsgenie.com"
    api_key = var.slack_webhook
  }
}
