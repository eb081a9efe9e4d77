schedule "orders_every_15_minutes" {
  pipeline        = pipeline.orders_summary
  cron            = "*/15 * * * *"
  skip_if_running = true
}

# Run on demand:
#   curl -X POST http://127.0.0.1:6789/api/pipeline_schedules/<id>/pipeline_runs/<token> \
#        -H 'Content-Type: application/json' -d '{"pipeline_run": {"variables": {"numbers": [5, 6]}}}'
# (the id and token are shown in Mage's Triggers page).
schedule "squares_on_demand" {
  pipeline = pipeline.squares
  type     = "api"
}
