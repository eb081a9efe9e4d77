notification "alerts" {
  channel = "opsgenie"

  opsgenie {
    url      = "https://api.opsgenie.com"
    api_key  = var.slack_webhook
    priority = "high"
  }
}
