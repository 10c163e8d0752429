"""Tables show headers a finance reader understands; the data keeps its machine names."""

from __future__ import annotations

import polars as pl

from runway_costs.dashboard.ui import _column_config


def test_known_columns_get_readable_labels_and_integers_thousands_separators():
    frame = pl.DataFrame(
        {"org": ["a"], "balance_credits": [12345], "usd": [123.45], "peak_generations": [3]}
    )
    config = _column_config(frame)
    assert config["org"]["label"] == "Organization"
    assert config["balance_credits"]["label"] == "Balance (credits)"
    assert config["balance_credits"]["type_config"]["format"] == "localized"
    assert config["usd"]["type_config"]["format"] == "%.2f"
    # unknown names still read as words, not snake_case
    assert config["peak_generations"]["label"] == "peak generations"
