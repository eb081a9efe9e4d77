"""A callback: runs after sum_squares succeeds."""

if 'callback' not in globals():
    from mage_ai.data_preparation.decorators import callback


@callback('success')
def log_total(*args, **kwargs):
    print(f"squares run for pipeline {kwargs.get('pipeline_uuid')} finished")
