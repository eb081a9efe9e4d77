"""The dynamic block: one item per shop, so Mage runs score_shop once per shop.

A dynamic block returns [items, metadata] (never a bare list of items): `items` is the list to
fan out, and `metadata[i]['block_uuid']` names the child that gets `items[i]`
(its run shows up as `score_shop:<name>`).
"""

if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader


@data_loader
def list_shops(*args, **kwargs):
    shops = kwargs.get('shops') or []
    if not shops:
        # An empty fan-out makes Mage wait about two minutes and then fail the run; say why now.
        raise ValueError('the pipeline variable `shops` is empty: nothing to fan out over')

    items = [{'shop': shop} for shop in shops]
    metadata = [{'block_uuid': shop} for shop in shops]
    return [items, metadata]
