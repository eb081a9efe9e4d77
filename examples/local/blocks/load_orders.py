"""Loads a handful of orders. Inline data keeps the example free of files, credentials and network."""

if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader


@data_loader
def load_orders(*args, **kwargs):
    orders = [
        {'order_id': 1, 'customer': 'ada', 'amount': 12.50, 'status': 'paid'},
        {'order_id': 2, 'customer': 'grace', 'amount': 40.00, 'status': 'paid'},
        {'order_id': 3, 'customer': 'ada', 'amount': 7.25, 'status': 'paid'},
        {'order_id': 4, 'customer': 'linus', 'amount': 99.99, 'status': 'cancelled'},
        {'order_id': 5, 'customer': 'grace', 'amount': 5.00, 'status': 'paid'},
    ]
    # A dict rather than the bare list: Mage would store each list element as its own output.
    return {'orders': orders}
