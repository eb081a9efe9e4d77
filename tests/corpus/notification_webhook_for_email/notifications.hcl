notification "alerts" {
  channel     = "email"
  webhook_url = var.slack_webhook

  email {
    smtp_host = "smtp.example.com"
    from      = "mage@example.com"
    to        = ["oncall@example.com"]
  }
}
