notification "alerts" {
  channel     = "slack"
  webhook_url = var.slack_webhook

  message "failure" {
    title = "{pipeline_uuid} failed after {duration}"
  }
}
