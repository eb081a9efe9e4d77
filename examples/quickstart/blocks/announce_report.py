"""A callback: Mage runs it after build_report succeeds (`@callback('failure')` would run on failure).

Its positional argument is build_report's output; kwargs carry the pipeline's variables and the
run's context (pipeline_uuid, execution_date, ...).
"""

if 'callback' not in globals():
    from mage_ai.data_preparation.decorators import callback


@callback('success')
def announce_report(report, *args, **kwargs):
    revenue = ', '.join(f'{total:.2f} {currency}' for currency, total in report['revenue'].items())
    print(f"orders report for {report['date']}: {report['orders']} orders, {revenue}; "
          f"top customers: {', '.join(report['top_customers'])}")
