notification "alerts" {
  channel     = "slack"
  webhook_url = var.slack_webhook
  pipelines   = ["etl"]
}
