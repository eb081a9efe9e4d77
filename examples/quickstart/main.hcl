# weir quickstart: Mage on Google Cloud, scaled to zero when idle.
#
#   weir validate          # checks everything below, offline, no credentials
#   weir plan              # shows what would be created
#   weir apply             # creates it
#
# Override the defaults with flags, environment variables or a *.auto.tfvars file:
#   weir plan --var project=my-project --var slack_webhook=https://hooks.slack.com/services/...
#   WEIR_VAR_slack_webhook=https://hooks.slack.com/services/... weir plan

weir {
  required_version = ">= 0.1"

  # State lives in .weir/state.json unless a backend says otherwise. For a team, keep it in GCS:
  # backend "gcs" {
  #   bucket = "acme-weir-state"
  #   prefix = "mage/prod"
  # }
}

variable "project" {
  type        = string
  description = "The Google Cloud project that runs Mage."
  default     = "acme-data-prod"

  validation {
    condition     = length(var.project) >= 6 && length(var.project) <= 30
    error_message = "A GCP project id has 6 to 30 characters."
  }
}

variable "region" {
  type        = string
  description = "The region of the web server, the scheduler, the database and the bucket."
  default     = "us-central1"
}

variable "slack_webhook" {
  type        = string
  description = "Slack incoming webhook for pipeline alerts. Set the real one with WEIR_VAR_slack_webhook."
  sensitive   = true
  default     = "https://hooks.slack.com/services/T000/B000/XXXX"
}

locals {
  image  = "mageai/mageai:0.9.80"
  bucket = "${var.project}-mage"

  labels = {
    team        = "data"
    environment = "prod"
  }
}

deployment "prod" {
  target  = "gcp"
  project = var.project
  region  = var.region
  image   = local.image
  labels  = local.labels

  # The Mage web server: Cloud Run, scaled to zero when nobody uses it.
  webserver {
    cpu           = 1
    memory        = "2Gi"
    min_instances = 0
    max_instances = 1
  }

  # The Mage scheduler: a small VM, free tier in us-central1, us-east1 and us-west1.
  scheduler {
    machine_type = "e2-micro"
    zone         = "${var.region}-a"
    disk_size_gb = 30
  }

  # Mage's own database (runs, triggers, logs index): Cloud SQL for PostgreSQL.
  database {
    tier         = "db-f1-micro"
    version      = "POSTGRES_16"
    disk_size_gb = 10
  }

  # Block outputs, logs and the code bundle.
  storage {
    bucket   = local.bucket
    location = var.region
  }

  # The default, spelled out: `weir destroy` keeps the database and the bucket, and a plan that
  # would replace them fails.
  lifecycle {
    prevent_destroy = true
  }
}
