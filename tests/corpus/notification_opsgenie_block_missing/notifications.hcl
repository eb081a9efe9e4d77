notification "alerts" {
  channel = "opsgenie"
}
