"""Downstream of the reduce: gets every shop's summary at once, as one list, and ranks them."""
import datetime
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
def rank_shops(scores, *args, **kwargs):
    if isinstance(scores, dict):
        # One shop only: Mage passes a single reduced value unwrapped.
        scores = [scores]
    ranking = sorted(
        (s for s in scores if s.get('shop')),
        key=lambda s: s['conversion_rate'],
        reverse=True,
    )

    execution_date = kwargs.get('execution_date')
    if not isinstance(execution_date, datetime.datetime):
        execution_date = datetime.datetime.now(datetime.timezone.utc)
    prefix = kwargs.get('export_prefix', 'exports/shop_ranking').rstrip('/')
    uri = f'{prefix}/{execution_date:%Y-%m-%d}.json'

    write_text(uri, json.dumps(ranking, indent=2))
    for place, s in enumerate(ranking, start=1):
        print(f"{place}. {s['shop']}: {s['conversion_rate']:.2%} of {s['visits']} visits")

    return {'uri': uri, 'shops': len(ranking)}
