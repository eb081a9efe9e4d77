"""Gates export_orders: a run with the variable `dry_run` set skips the export.

When this returns False, Mage marks export_orders (and anything after it) `condition_failed`,
and the run still ends `completed`.
"""

if 'condition' not in globals():
    from mage_ai.data_preparation.decorators import condition


@condition
def evaluate_condition(*args, **kwargs) -> bool:
    dry_run = kwargs.get('dry_run', False)
    if isinstance(dry_run, str):
        dry_run = dry_run.strip().lower() in ('1', 'true', 'yes')
    return not dry_run
