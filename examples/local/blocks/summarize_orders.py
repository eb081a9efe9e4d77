"""Totals the paid orders per customer."""

if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test


@transformer
def summarize_orders(data, *args, **kwargs):
    totals = {}
    for order in data['orders']:
        if order['status'] == 'paid':
            totals[order['customer']] = round(totals.get(order['customer'], 0) + order['amount'], 2)
    return {
        'customers': dict(sorted(totals.items())),
        'revenue': round(sum(totals.values()), 2),
    }


@test
def test_output(output, *args) -> None:
    assert output['revenue'] == 64.75, output
