notification "alerts" {
  channel     = "slack"
  webhook_url = var.slack_webhook

  message "failed" {
    title = "{pipeline_uuid} failed"
  }
}
