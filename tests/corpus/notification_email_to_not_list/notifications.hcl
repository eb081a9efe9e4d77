notification "alerts" {
  channel = "email"

  email {
    smtp_host = "smtp.example.com"
    from      = "mage@example.com"
    to        = "oncall@example.com"
  }
}
