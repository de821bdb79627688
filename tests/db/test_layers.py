"""Layers: typed filters when reading, batched writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa

from gisgrid.db import layers
from gisgrid.errors import InputError


def _statements(engine):
    """A list that collects every SQL statement ``engine`` sends, and the listener to remove."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    return sent, record


def test_insert_frame_sends_rows_in_batches_and_returns_ids_in_row_order(scratch_engine):
    n = 2500
    frame = pd.DataFrame({"code": [f"d{i:04d}" for i in range(n)], "name": [f"部门 {i}" for i in range(n)]})
    frame["phone"] = None
    sent, record = _statements(scratch_engine)
    try:
        with scratch_engine.begin() as conn:
            ids = layers.insert_frame(conn, "department", frame)
            inserts = [s for s in sent if s.lstrip().upper().startswith("INSERT")]
            stored = dict(conn.execute(sa.text("SELECT id, code FROM department")).all())
    finally:
        sa.event.remove(scratch_engine, "before_cursor_execute", record)
    # one statement per batch of up to 1000 rows, not one per row
    assert len(inserts) <= 3
    assert len(ids) == n and len(stored) == n
    assert [stored[i] for i in ids] == frame["code"].tolist()


def test_insert_frame_writes_geometries_nulls_and_numpy_values(scratch_engine):
    frame = pd.DataFrame(
        {
            "code": ["110108", "110108001"],
            "level": ["county", "town"],
            "name": ["海淀区", "学院路街道"],
            "metric_epsg": pd.Series([np.int64(4547), np.nan], dtype=object),
            "geom": [
                shapely.MultiPolygon([shapely.box(116.3, 39.9, 116.4, 40.0)]),
                shapely.MultiPolygon([shapely.box(116.33, 39.98, 116.36, 40.0)]),
            ],
        }
    )
    with scratch_engine.begin() as conn:
        ids = layers.insert_frame(conn, "jurisdiction", frame)
        rows = conn.execute(
            sa.text("SELECT code, metric_epsg, ST_SRID(geom), ST_Area(geom) FROM jurisdiction WHERE id = ANY(:i)"),
            {"i": ids},
        ).all()
        assert (
            layers.insert_frame(conn, "department", pd.DataFrame({"code": ["x"], "name": ["y"]}), returning=None) == []
        )
    assert sorted(rows) == [
        ("110108", 4547, 4326, pytest.approx(0.01)),
        ("110108001", None, 4326, pytest.approx(0.0006)),
    ]


def test_fetch_layer_filters(engine, town):
    with engine.connect() as conn:
        towns = layers.fetch_layer(conn, "jurisdictions")
        code = towns.loc[towns["level"] == "town", "code"].iloc[0]
        county = towns.loc[towns["code"] == code, "parent_code"].iloc[0]
        own = layers.fetch_layer(conn, "segments", jurisdiction_code=code)
        expected = conn.execute(
            sa.text(
                "SELECT count(*) FROM segment g JOIN street s ON s.id = g.street_id JOIN jurisdiction j "
                "ON j.id = s.jurisdiction_id WHERE j.code = :c AND g.area IS NOT NULL"
            ),
            {"c": code},
        ).scalar()
        assert len(own) == expected > 0
        # the county itself files no streets; its subtree holds the town's
        assert len(layers.fetch_layer(conn, "streets", jurisdiction_code=county)) == 0
        under = layers.fetch_layer(conn, "streets", under_jurisdiction=county)
        assert set(under["jurisdiction"]) == {code}
        subtree = layers.fetch_layer(conn, "jurisdictions", under_jurisdiction=county)
        assert county in set(subtree["code"]) and code in set(subtree["code"])
        assert all(c.startswith(county) for c in subtree["code"])
        # by id, in the layer's order
        some = own["id"].tolist()[:5]
        assert layers.fetch_layer(conn, "segments", ids=list(reversed(some)))["id"].tolist() == some
        # spatial: segments whose centerline crosses the town's boundary area
        area = layers.fetch_layer(conn, "segments", in_area_of=code)
        assert set(own["id"]) <= set(area["id"])
        minx, miny, maxx, maxy = own.total_bounds
        boxed = layers.fetch_layer(conn, "streets", bbox=(minx, miny, maxx, maxy), limit=7)
        assert len(boxed) == 7 and boxed["id"].is_monotonic_increasing
        with pytest.raises(InputError, match="bbox"):
            layers.fetch_layer(conn, "departments", bbox=(0, 0, 1, 1))
