variable "region" {
  default = "us-central1"
}
