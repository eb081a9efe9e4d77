"""Gets every child's result as one list, adds them up and writes JSON to `output_path`."""
import json
import os

if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


@data_exporter
def sum_squares(squares, *args, **kwargs):
    if not isinstance(squares, list):
        # One number only: Mage passes a single reduced value unwrapped.
        squares = [squares]
    result = {'squares': squares, 'total': sum(squares)}

    path = kwargs.get('output_path', 'out/squares.json')
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        json.dump(result, f, indent=2)
        f.write('\n')
    print(f"total {result['total']} written to {os.path.abspath(path)}")
    return result
