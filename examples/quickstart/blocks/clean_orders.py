"""Keeps paid orders above the minimum amount and normalises currencies and amounts."""

if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test


@transformer
def clean_orders(data, *args, **kwargs):
    # `data` is load_orders' output: one positional argument per upstream block, in order.
    min_cents = int(kwargs.get('min_amount_cents', 0))

    kept = []
    for order in data['orders']:
        if order['status'] != 'paid' or order['amount_cents'] < min_cents:
            continue
        kept.append({
            'order_id': order['order_id'],
            'customer': order['customer'],
            'currency': order['currency'].upper(),
            'amount': round(order['amount_cents'] / 100, 2),
        })

    return {
        'date': data['date'],
        'orders': kept,
        'dropped': len(data['orders']) - len(kept),
    }


@test
def test_output(output, *args) -> None:
    assert all(order['amount'] > 0 for order in output['orders'])
