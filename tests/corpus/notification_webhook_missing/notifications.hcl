notification "alerts" {
  channel = "teams"
}
