notification "alerts" {
  channel     = "slack"
  webhook_url = var.slack_webhook

  message "success" {
    title = "{pipeline_uiid} done"
  }
}
