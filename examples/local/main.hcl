# weir on a laptop: writes a Mage project into ./mage_project, no cloud, no network.
#
#   weir apply                                   # writes mage_project/ (and .weir/state.json)
#   mage run mage_project orders_summary         # runs the linear pipeline once
#   mage start mage_project                      # the scheduler runs the triggers in schedules.hcl
#
# Run both mage commands from this directory: the pipelines write to paths relative to it.

deployment "laptop" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}
