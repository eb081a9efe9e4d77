"""Runs once per shop (a child of the dynamic block list_shops) and returns one summary.

With `reduce_output = true`, Mage collects the children's return values into one list for the
block downstream. A child must return a single value (here a dict): a two-element list would be
read as [data, metadata].
"""
import hashlib

if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer


@transformer
def score_shop(*args, **kwargs):
    if not args:
        # Defensive: a child of an empty fan-out gets no argument.
        return {'shop': None, 'visits': 0, 'orders': 0, 'conversion_rate': 0.0}

    item = args[0]
    shop = item['shop']

    # A stand-in for heavy per-shop work (this block runs on the `highmem` profile):
    # deterministic numbers derived from the shop's name.
    digest = hashlib.sha256(shop.encode()).digest()
    visits = 1_000 + int.from_bytes(digest[:2], 'big') % 9_000
    orders = int(visits * (0.01 + digest[2] / 255 * 0.05))

    return {
        'shop': shop,
        'visits': visits,
        'orders': orders,
        'conversion_rate': round(orders / visits, 4),
    }
