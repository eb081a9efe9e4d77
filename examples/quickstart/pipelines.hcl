# Three pipelines. Each `block` names its code file; `upstream` lists the blocks whose outputs it
# receives, as positional arguments in the order written. Pipeline `variables` reach every block
# as keyword arguments (a schedule's `variables` override them for its runs).

locals {
  exports = "gs://${local.bucket}/exports"
}

# 1. A linear ETL: load -> transform -> export, with a condition that can skip the export.
pipeline "orders_etl" {
  description = "Loads the day's orders, keeps the paid ones and exports them as JSON."
  tags        = ["orders", "daily"]
  profile     = resource_profile.standard

  variables = {
    source_name      = "shop"
    min_amount_cents = 100
    export_prefix    = "${local.exports}/orders"
    dry_run          = false
  }

  # The default for every block of the pipeline (weir writes it into each block, since Mage
  # ignores pipeline-level retries for batch pipelines).
  retry {
    retries             = 2
    delay               = "10s"
    max_delay           = "2m"
    exponential_backoff = true
  }

  concurrency {
    pipeline_run_limit = 1
    on_limit           = "skip"
  }

  block "load_orders" {
    type   = "data_loader"
    source = "blocks/load_orders.py"
  }

  block "clean_orders" {
    type     = "transformer"
    source   = "blocks/clean_orders.py"
    upstream = [block.load_orders]
  }

  block "export_orders" {
    type     = "data_exporter"
    source   = "blocks/export_orders.py"
    upstream = [block.clean_orders]
    timeout  = "15m"

    # Writing to the bucket can hit transient errors: retry more, and wait longer, than the
    # pipeline's default. Waits double (30s, 1m, 2m); Mage stops retrying early once the total
    # wait would reach max_delay.
    retry {
      retries   = 3
      delay     = "30s"
      max_delay = "10m"
    }
  }

  # Runs before export_orders; when it returns False the export is skipped.
  condition "not_dry_run" {
    source = "blocks/not_dry_run.py"
    gates  = [block.export_orders]
  }
}

# 2. A fan-out: list_shops is dynamic, so score_shop runs once per shop, each run on the
#    high-memory profile; reduce_output gathers the results into one list for rank_shops.
pipeline "shop_scores" {
  description = "Scores every shop in parallel, then ranks them."
  tags        = ["shops"]
  profile     = resource_profile.standard

  variables = {
    shops         = ["berlin", "lisbon", "austin", "osaka"]
    export_prefix = "${local.exports}/shop_ranking"
  }

  block "list_shops" {
    type    = "data_loader"
    source  = "blocks/list_shops.py"
    dynamic = true
  }

  block "score_shop" {
    type          = "transformer"
    source        = "blocks/score_shop.py"
    upstream      = [block.list_shops]
    profile       = resource_profile.highmem
    reduce_output = true
  }

  block "rank_shops" {
    type     = "data_exporter"
    source   = "blocks/rank_shops.py"
    upstream = [block.score_shop]
  }
}

# 3. A sensor that waits for orders_etl's export, a custom block that reads it, and a callback.
pipeline "orders_report" {
  description = "Waits for the day's orders export and summarises it."
  tags        = ["orders", "reporting"]

  variables = {
    export_prefix = "${local.exports}/orders"
  }

  # No profile: the sensor mostly sleeps, which is not worth a Cloud Run job; it runs with
  # Mage's default executor.
  block "wait_for_export" {
    type    = "sensor"
    source  = "blocks/wait_for_export.py"
    timeout = "2h"
  }

  block "build_report" {
    type     = "custom"
    source   = "blocks/build_report.py"
    upstream = [block.wait_for_export]
    profile  = resource_profile.standard

    retry {
      retries = 1
    }
  }

  # Runs after build_report succeeds.
  callback "announce_report" {
    source = "blocks/announce_report.py"
    on     = [block.build_report]
  }
}
