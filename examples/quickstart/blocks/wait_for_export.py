"""A sensor: Mage calls it about once a minute until it returns True (or the block times out).

It waits for today's export of the orders_etl pipeline.
"""
import datetime
import os

if 'sensor' not in globals():
    from mage_ai.data_preparation.decorators import sensor


def exists(uri):
    if uri.startswith('gs://'):
        from google.cloud import storage

        bucket, _, name = uri[len('gs://'):].partition('/')
        return storage.Client().bucket(bucket).blob(name).exists()
    return os.path.exists(uri)


@sensor
def wait_for_export(*args, **kwargs) -> bool:
    execution_date = kwargs.get('execution_date')
    if not isinstance(execution_date, datetime.datetime):
        execution_date = datetime.datetime.now(datetime.timezone.utc)
    prefix = kwargs.get('export_prefix', 'exports/orders').rstrip('/')
    uri = f'{prefix}/{execution_date:%Y-%m-%d}.json'

    found = exists(uri)
    print(f"{uri}: {'found' if found else 'not there yet'}")
    return found
