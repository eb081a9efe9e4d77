"""Writes the cleaned orders as one JSON document per day.

`export_prefix` (a pipeline variable) is either `gs://bucket/path` or a local directory.
Mage's Docker image ships google-cloud-storage, so the gs:// case works on Cloud Run as is.
"""
import json
import os

if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


def write_text(uri, text):
    if uri.startswith('gs://'):
        from google.cloud import storage

        bucket, _, name = uri[len('gs://'):].partition('/')
        blob = storage.Client().bucket(bucket).blob(name)
        blob.upload_from_string(text, content_type='application/json')
    else:
        os.makedirs(os.path.dirname(uri) or '.', exist_ok=True)
        with open(uri, 'w') as f:
            f.write(text)


@data_exporter
def export_orders(data, *args, **kwargs):
    prefix = kwargs.get('export_prefix', 'exports/orders').rstrip('/')
    uri = f"{prefix}/{data['date']}.json"

    write_text(uri, json.dumps(data, indent=2, sort_keys=True))
    print(f"exported {len(data['orders'])} orders to {uri} ({data['dropped']} dropped)")

    return {'uri': uri, 'count': len(data['orders'])}
