notification "alerts" {
  channel = "opsgenie"

  opsgenie {
    url = "https://api.opsgenie.com"
  }
}
