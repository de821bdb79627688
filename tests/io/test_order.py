"""Natural order of names (issue 21): 第2段 before 第10段 wherever segment names are listed."""

from __future__ import annotations

import pandas as pd

from gisgrid.io.order import natural_sorted, sort_frame


def test_numbers_inside_names_compare_as_numbers():
    names = ["学院路第10段", "学院路第2段", "学院路第1段", "Mannerheimintie (10)", "Mannerheimintie (9)", None]
    assert natural_sorted(names) == [
        None,
        "Mannerheimintie (9)",
        "Mannerheimintie (10)",
        "学院路第1段",
        "学院路第2段",
        "学院路第10段",
    ]


def test_sort_frame_sorts_named_columns_naturally_and_others_as_they_are():
    frame = pd.DataFrame({"days": [3, 1, 1], "unit": ["路第10段", "路第9段", "路第10段"]})
    out = sort_frame(frame, ["days", "unit"], natural=["unit"])
    assert out["unit"].tolist() == ["路第9段", "路第10段", "路第10段"]
    assert out["days"].tolist() == [1, 1, 3]
