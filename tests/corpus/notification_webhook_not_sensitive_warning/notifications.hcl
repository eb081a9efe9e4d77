notification "alerts" {
  channel     = "discord"
  webhook_url = "https://discord.com/api/webhooks/1/abc"
}
