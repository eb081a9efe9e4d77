notification "alerts" {
  channel     = "slack"
  webhook_url = var.slack_webhook

  message "failure" {
    title = "{pipeline_uuid} failed"
  }
}

notification "mail" {
  channel = "email"

  email {
    smtp_host = "smtp.example.com"
    from      = "mage@example.com"
    to        = ["oncall@example.com"]
  }

  message "failure" {
    title = "Pipeline {pipeline_uuid} failed at {execution_time}"
  }
}
