"""Loads the day's orders.

A real pipeline would call the shop's API here. The quickstart generates a deterministic sample
(same date, same orders) so that it runs anywhere, with no credentials and no network.
"""
import datetime
import random

if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test

CUSTOMERS = ['ada', 'grace', 'linus', 'margaret', 'barbara', 'ken']
STATUSES = ['paid', 'paid', 'paid', 'refunded', 'cancelled']
CURRENCIES = ['eur', 'usd', 'gbp']


def run_date(kwargs):
    """The date this run is for: the trigger's execution date, or today under `mage run`."""
    execution_date = kwargs.get('execution_date')
    if isinstance(execution_date, datetime.datetime):
        return execution_date.date()
    return datetime.datetime.now(datetime.timezone.utc).date()


@data_loader
def load_orders(*args, **kwargs):
    day = run_date(kwargs)
    source = kwargs.get('source_name', 'shop')
    rng = random.Random(f'{source}:{day.isoformat()}')

    orders = []
    for n in range(rng.randint(20, 40)):
        orders.append({
            'order_id': f'{day:%Y%m%d}-{n:04d}',
            'customer': rng.choice(CUSTOMERS),
            'amount_cents': rng.randint(100, 25_000),
            'currency': rng.choice(CURRENCIES),
            'status': rng.choice(STATUSES),
        })

    # Return a dict, not the bare list: Mage stores each element of a returned list as its own
    # output and unwraps a one-element list, so a dict keeps the shape stable downstream.
    return {'date': day.isoformat(), 'source': source, 'orders': orders}


@test
def test_output(output, *args) -> None:
    assert output['orders'], 'no orders loaded'
