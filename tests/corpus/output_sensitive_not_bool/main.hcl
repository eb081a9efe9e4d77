deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}

output "a" {
  value     = 1
  sensitive = "yes"
}
