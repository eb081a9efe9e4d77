pipeline "etl" {
  description = "nothing yet"
}
