# `output_path` is relative to the directory Mage was started from (its working directory),
# not to the project: with the commands in main.hcl, the files appear in ./out/.

pipeline "orders_summary" {
  description = "Sums a few orders by customer and writes the result as JSON."

  variables = {
    output_path = "out/orders.json"
  }

  block "load_orders" {
    type   = "data_loader"
    source = "blocks/load_orders.py"
  }

  block "summarize_orders" {
    type     = "transformer"
    source   = "blocks/summarize_orders.py"
    upstream = [block.load_orders]
  }

  block "write_json" {
    type     = "data_exporter"
    source   = "blocks/write_json.py"
    upstream = [block.summarize_orders]
  }
}

# Dynamic blocks need Mage's scheduler (`mage run` cannot run them): start Mage and call the
# API trigger in schedules.hcl.
pipeline "squares" {
  description = "Squares each number in its own block run, then adds the squares up."

  variables = {
    numbers     = [1, 2, 3, 4]
    output_path = "out/squares.json"
  }

  block "split_numbers" {
    type    = "data_loader"
    source  = "blocks/split_numbers.py"
    dynamic = true
  }

  block "square" {
    type          = "transformer"
    source        = "blocks/square.py"
    upstream      = [block.split_numbers]
    reduce_output = true
  }

  block "sum_squares" {
    type     = "data_exporter"
    source   = "blocks/sum_squares.py"
    upstream = [block.square]

    retry {
      retries = 1
      delay   = "5s"
    }
  }

  callback "log_total" {
    source = "blocks/log_total.py"
    on     = [block.sum_squares]
  }
}
