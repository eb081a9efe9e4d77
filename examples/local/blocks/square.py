"""A child of the dynamic block: gets one item, returns one number (reduce_output collects them)."""

if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer


@transformer
def square(*args, **kwargs):
    if not args:
        # Defensive: a child of an empty fan-out gets no argument.
        return 0
    return args[0]['n'] ** 2
