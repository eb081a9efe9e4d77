"""A custom block: reads the day's orders export and sums revenue by currency and customer."""
import datetime
import json
from collections import defaultdict

if 'custom' not in globals():
    from mage_ai.data_preparation.decorators import custom


def read_text(uri):
    if uri.startswith('gs://'):
        from google.cloud import storage

        bucket, _, name = uri[len('gs://'):].partition('/')
        return storage.Client().bucket(bucket).blob(name).download_as_text()
    with open(uri) as f:
        return f.read()


@custom
def build_report(*args, **kwargs):
    # args[0] is the sensor's output, always an empty list: read the file the sensor waited for.
    execution_date = kwargs.get('execution_date')
    if not isinstance(execution_date, datetime.datetime):
        execution_date = datetime.datetime.now(datetime.timezone.utc)
    prefix = kwargs.get('export_prefix', 'exports/orders').rstrip('/')
    export = json.loads(read_text(f'{prefix}/{execution_date:%Y-%m-%d}.json'))

    revenue = defaultdict(float)
    by_customer = defaultdict(float)
    for order in export['orders']:
        revenue[order['currency']] += order['amount']
        by_customer[order['customer']] += order['amount']

    top = sorted(by_customer.items(), key=lambda kv: kv[1], reverse=True)[:3]
    return {
        'date': export['date'],
        'orders': len(export['orders']),
        'revenue': {currency: round(total, 2) for currency, total in sorted(revenue.items())},
        'top_customers': [name for name, _ in top],
    }
