# Alerts go to Slack. The webhook is a sensitive variable, so it never appears in a plan or a log.
# Placeholders are written {name}; weir rejects any name Mage cannot fill.

notification "data_alerts" {
  channel     = "slack"
  webhook_url = var.slack_webhook
  on          = ["failure", "sla_missed"]
  pipelines   = [pipeline.orders_etl, pipeline.shop_scores, pipeline.orders_report]

  message "failure" {
    title   = "{pipeline_uuid} failed"
    summary = "Run of {execution_time} ({pipeline_schedule_name}): {error}"
    details = "Run of {execution_time} ({pipeline_schedule_name}).\n{error}\n{stacktrace}\n{pipeline_run_url}"
  }

  message "sla_missed" {
    title   = "{pipeline_uuid} is late"
    summary = "The run of {execution_time} has not finished: {pipeline_run_url}"
  }
}

notification "report_ready" {
  channel     = "slack"
  webhook_url = var.slack_webhook
  on          = ["success"]
  pipelines   = [pipeline.orders_report]

  message "success" {
    title   = "Orders report for {execution_time} is ready"
    summary = "{pipeline_uuid} finished: {pipeline_run_url}"
  }
}

output "webserver_url" {
  description = "The Mage web server (Cloud Run)."
  value       = deployment.prod.webserver_url
}

output "scheduler_ip" {
  description = "The scheduler VM's address."
  value       = deployment.prod.scheduler_ip
}

output "bucket" {
  description = "Where block outputs, logs, code bundles and exports live."
  value       = deployment.prod.bucket
}
