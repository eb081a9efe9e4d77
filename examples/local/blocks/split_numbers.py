"""The dynamic block: returns [items, metadata], one child run of `square` per item."""

if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader


@data_loader
def split_numbers(*args, **kwargs):
    numbers = kwargs.get('numbers') or []
    if not numbers:
        # Mage stalls for about two minutes on an empty fan-out before failing: fail fast instead.
        raise ValueError('the variable `numbers` is empty')

    items = [{'n': n} for n in numbers]
    metadata = [{'block_uuid': f'n_{i}'} for i in range(len(numbers))]
    return [items, metadata]
