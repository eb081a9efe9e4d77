notification "alerts" {
  channel = "email"

  email {
    smtp_host = "smtp.example.com"
    to        = ["oncall@example.com"]
  }
}
