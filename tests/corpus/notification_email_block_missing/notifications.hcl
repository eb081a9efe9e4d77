notification "alerts" {
  channel = "email"
}
