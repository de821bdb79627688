"""``/export/segments.geojson`` (issue 23): ``?jurisdiction`` limits the rows and every segment carries its
owners, so that another system needs no second file."""

from __future__ import annotations

import json

import sqlalchemy as sa

from tests.interop.conftest import HAIDIAN, LONGGANG


def _segment_count(engine, code: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("""SELECT count(*) FROM segment g JOIN street s ON s.id = g.street_id
                       JOIN jurisdiction j ON j.id = s.jurisdiction_id WHERE j.code = :c AND g.area IS NOT NULL"""),
            {"c": code},
        ).scalar()


def test_segments_export_by_jurisdiction_with_owners(interop_app, interop_engine):
    client = interop_app.test_client()
    everything = json.loads(client.get("/export/segments.geojson").data)
    res = client.get(f"/export/segments.geojson?jurisdiction={LONGGANG}")
    assert res.status_code == 200
    longgang = json.loads(res.data)
    assert len(longgang["features"]) == _segment_count(interop_engine, LONGGANG) > 0
    assert len(everything["features"]) == len(longgang["features"]) + _segment_count(interop_engine, HAIDIAN)
    props = [f["properties"] for f in longgang["features"]]
    assert {"段长", "二级街长", "一级街长", "总街长", "owner_phone", "chain"} <= set(props[0])
    assert sum(1 for p in props if p["段长"]) > len(props) / 2
    with interop_engine.connect() as conn:
        owner = conn.execute(
            sa.text("""SELECT a.owner_name FROM owner_on(CURRENT_DATE) a
                       WHERE a.target_type = 'segment' AND a.target_id = :i AND a.role = '段长'"""),
            {"i": props[0]["id"]},
        ).scalar()
    assert props[0]["段长"] == owner
    long_ago = json.loads(client.get(f"/export/segments.geojson?jurisdiction={LONGGANG}&date=1990-01-01").data)
    assert not any(f["properties"]["段长"] for f in long_ago["features"])
    xlsx = client.get(f"/export/segments.xlsx?jurisdiction={LONGGANG}")
    assert xlsx.status_code == 200
    assert client.get("/export/segments.geojson?jurisdiction=000000").status_code == 404
    assert client.get("/export/segments.geojson?date=soon").status_code == 400
