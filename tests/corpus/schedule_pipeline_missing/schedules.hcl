schedule "nightly" {
  cron = "@daily"
}
