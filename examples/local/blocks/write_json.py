"""Writes the summary as JSON to the pipeline variable `output_path`.

A relative path resolves against Mage's working directory (where `mage run` / `mage start` was
started), not the project directory.
"""
import json
import os

if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


@data_exporter
def write_json(summary, *args, **kwargs):
    path = kwargs.get('output_path', 'out/orders.json')
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write('\n')
    print(f'wrote {os.path.abspath(path)}')
