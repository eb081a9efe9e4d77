variable "oncall_webhook" {
  type      = string
  sensitive = true
  default   = "https://hooks.slack.com/services/T000/B000/ONCALL"
}

notification "alerts" {
  channel     = "slack"
  webhook_url = var.slack_webhook
  on          = ["failure"]
}

notification "oncall" {
  channel     = "slack"
  webhook_url = var.oncall_webhook
  on          = ["sla_missed"]
  pipelines   = [pipeline.etl]
}
