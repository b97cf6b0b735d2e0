import json

import pytest

from minimath.seeds import compare, heldout_row, markdown


def test_compare_reports_mean_std_paired_difference_and_spread():
    a = {1: {"x": 60.0}, 2: {"x": 62.0}, 3: {"x": 64.0}}
    b = {1: {"x": 10.0}, 2: {"x": 11.0}, 3: {"x": 12.0}}
    s = compare(a, b, ["x", "y"])
    assert s["x"]["a"] == (62.0, 2.0) and s["x"]["b"] == (11.0, 1.0) and s["x"]["difference"] == (51.0, 1.0)
    assert s["x"]["exceeds_spread"] and not s["y"]["exceeds_spread"]  # a column nobody has is 0 on both sides
    close = compare({1: {"x": 1.0}, 2: {"x": 5.0}}, {1: {"x": 2.0}, 2: {"x": 3.0}}, ["x"])
    assert not close["x"]["exceeds_spread"]
    assert "| x | 62.0 ± 2.0 | 11.0 ± 1.0 | +51.0 ± 1.0 | yes |" in markdown(s, "a", "b")
    with pytest.raises(ValueError, match="same seeds"):
        compare(a, {1: {"x": 1.0}}, ["x"])


def test_heldout_row_reads_eval_results_with_categories(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(
        json.dumps(
            {
                "tasks": {
                    "arithmetic": {"accuracy": 0.5, "by_category": {"+": 1.0, "-": 0.0}},
                    "equations": {"accuracy": 0.25},
                }
            }
        )
    )
    assert heldout_row(path) == {"arithmetic": 50.0, "arithmetic[+]": 100.0, "arithmetic[-]": 0.0, "equations": 25.0}
