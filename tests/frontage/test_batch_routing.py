"""The unit step (门前三包) in batch routing: ``gisgrid assign FILE`` and ``gisgrid assign --rerun`` send a
frontage-duty report in a unit's frontage where intake sends it (:func:`gisgrid.routing.frontage.route_to_unit`)."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gisgrid.cli import main

UNIT = """
SELECT u.id, u.name, u.person_id, u.segment_id, ST_X(ST_PointOnSurface(u.frontage)) AS lon,
       ST_Y(ST_PointOnSurface(u.frontage)) AS lat
FROM frontage_unit u JOIN frontage_agreement a ON a.unit_id = u.id
WHERE NOT ST_IsEmpty(u.frontage) AND u.person_id IS NOT NULL AND {cond}
  AND EXISTS (SELECT 1 FROM owner_on(CURRENT_DATE) o WHERE o.target_type = 'segment' AND o.target_id = u.segment_id
              AND o.role = '段长')
ORDER BY u.id LIMIT 1"""
VALID = "a.signed_on <= CURRENT_DATE AND CURRENT_DATE + 60 < a.expires_on"
EXPIRED = (
    "a.expires_on <= CURRENT_DATE AND NOT EXISTS (SELECT 1 FROM frontage_agreement b WHERE b.unit_id = u.id "
    "AND b.expires_on > CURRENT_DATE)"
)


@pytest.fixture()
def shatin(shatin_url, monkeypatch):
    monkeypatch.setenv("GISGRID_DATABASE_URL", shatin_url.replace("postgresql+psycopg://", "postgresql://", 1))
    engine = sa.create_engine(shatin_url)
    yield engine
    engine.dispose()


def _run(*args):
    out = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return out


def _units(engine):
    with engine.connect() as conn:
        valid = conn.execute(sa.text(UNIT.format(cond=VALID))).first()
        expired = conn.execute(sa.text(UNIT.format(cond=EXPIRED))).first()
        chief, expired_chief = (
            conn.execute(
                sa.text("""SELECT a.person_id, a.department_id, a.owner_name FROM owner_on(CURRENT_DATE) a
                           WHERE a.target_type = 'segment' AND a.target_id = :s AND a.role = '段长'"""),
                {"s": unit.segment_id},
            ).first()
            for unit in (valid, expired)
        )
    return valid, expired, chief, expired_chief


def _owner(row):
    """(person id, department id) of a routed row, None where empty."""
    return tuple(None if pd.isna(v) else int(v) for v in (row["owner_person_id"], row["owner_department_id"]))


def test_rerun_sends_frontage_duty_reports_to_the_unit(shatin):
    valid, expired, chief, expired_chief = _units(shatin)
    cases = [(valid, "0503"), (expired, "0104"), (valid, "0201")]  # 出店经营, 门前乱堆垃圾, fly-posting
    with shatin.begin() as conn:
        ids = [
            conn.execute(
                sa.text("""INSERT INTO report (geom, category_id, reported_at, source, status)
                           SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), c.id, now(), 'test-batch', 'reported'
                           FROM category c WHERE c.code = :cat RETURNING id"""),
                {"lon": unit.lon, "lat": unit.lat, "cat": cat},
            ).scalar()
            for unit, cat in cases
        ]
    try:
        out = _run("assign", "--rerun", "--since", "2000-01-01")
        assert "frontage_unit" in out.output  # counted by rule
        with shatin.connect() as conn:
            rows = {
                r.report_id: r._mapping
                for r in conn.execute(
                    sa.text("""SELECT report_id, rule, target_type, target_id, owner_person_id, owner_department_id,
                                      chain, reason
                               FROM report_current WHERE report_id = ANY(:ids)"""),
                    {"ids": ids},
                )
            }
        took, declined, other = (rows[i] for i in ids)
        # in a unit's frontage with a valid agreement: the unit's contact, the segment chief supervising
        assert took["rule"] == "frontage_unit" and _owner(took) == (valid.person_id, None)
        assert (took["target_type"], took["target_id"]) == ("segment", valid.segment_id)
        assert took["chain"].startswith("门前三包 " + valid.name) and chief.owner_name in took["chain"]
        # no valid agreement: stays with the segment chief, and says why
        assert declined["rule"] != "frontage_unit" and _owner(declined) == tuple(expired_chief[:2])
        assert expired.name in declined["reason"] and "agreement expired" in declined["reason"]
        assert "stays with the segment chief" in declined["reason"]
        # not a frontage duty: by location, as before
        assert other["rule"] == "segment_area" and _owner(other) == tuple(chief[:2])
        assert not other["chain"].startswith("门前三包")
        # reports stored in bulk then adopt their routed owner: the case waits on the unit's contact
        from gisgrid.cases.bulk import adopt_routing

        with shatin.begin() as conn:
            adopt_routing(conn, where="r.id = ANY(:ids)", params={"ids": ids})
            adopted = conn.execute(
                sa.text("""SELECT frontage_unit_id, assignee_person_id, assigned_segment_id FROM report
                           WHERE id = ANY(:ids) ORDER BY id"""),
                {"ids": ids},
            ).all()
        assert tuple(adopted[0]) == (valid.id, valid.person_id, valid.segment_id)
        assert adopted[1].frontage_unit_id is None and adopted[2].frontage_unit_id is None
    finally:
        with shatin.begin() as conn:
            conn.execute(sa.text("DELETE FROM report WHERE source = 'test-batch'"))


def test_a_file_of_reports_is_routed_to_the_units_as_intake_routes_them(shatin, tmp_path):
    valid, expired, chief, expired_chief = _units(shatin)
    src = tmp_path / "reports.csv"
    pd.DataFrame(
        {
            "lon": [valid.lon, expired.lon, valid.lon, valid.lon],
            "lat": [valid.lat, expired.lat, valid.lat, valid.lat],
            "category": ["0503", "0104", "0201", "0105"],
            "date": [pd.Timestamp.now().date().isoformat()] * 3 + [""],
        }
    ).to_csv(src, index=False)
    dst = tmp_path / "out.csv"
    _run("assign", str(src), "--crs", "EPSG:4326", "-o", str(dst))
    out = pd.read_csv(
        dst, dtype={"owner_person_id": "Int64", "owner_department_id": "Int64", "frontage_unit_id": "Int64"}
    )
    assert len(out) == 4
    took, declined, other, undated = (out.iloc[i] for i in range(4))
    assert took["rule"] == "frontage_unit" and took["frontage_unit_id"] == valid.id
    assert _owner(took) == (valid.person_id, None) and took["supervisor"] == chief.owner_name
    assert took["chain"].startswith("门前三包 " + valid.name)
    assert declined["rule"] != "frontage_unit" and pd.isna(declined["frontage_unit_id"])
    assert _owner(declined) == tuple(expired_chief[:2]) and "agreement expired" in declined["reason"]
    assert other["rule"] == "segment_area" and pd.isna(other["frontage_unit_id"])
    assert _owner(other) == tuple(chief[:2]) and pd.isna(other["supervisor"])
    assert undated["rule"] == "frontage_unit"  # no date: today, as intake dates a report


def test_the_batch_and_intake_agree_on_every_unit(shatin, settings):
    """Each unit's frontage point, with each frontage-duty category, routed one by one (intake's
    explain_point + route_frontage) and as one table: the same owner, rule, chain and reason."""
    from gisgrid.routing.store import explain_point, load_deployment, route_frontage

    with shatin.connect() as conn:
        deployment = load_deployment(conn, settings)
        points = pd.read_sql_query(
            sa.text("""SELECT ST_X(ST_PointOnSurface(frontage)) AS lon, ST_Y(ST_PointOnSurface(frontage)) AS lat
                       FROM frontage_unit WHERE NOT ST_IsEmpty(frontage) ORDER BY id"""),
            conn,
        )
        frame = pd.concat([points.assign(category=c) for c in ("0503", "0104", "0201")], ignore_index=True)
        frame["date"] = pd.Timestamp.now().date().isoformat()
        table = deployment.assign_table(frame, crs="EPSG:4326", category="category", date="date")
        singles = [
            route_frontage(
                conn,
                explain_point(deployment, lon=r.lon, lat=r.lat, category=r.category, day=r.date),
                category=r.category,
            )
            for r in frame.itertuples()
        ]
    assert (table["rule"] == "frontage_unit").sum() > 5
    for (_, row), single in zip(table.iterrows(), singles):
        assert row["rule"] == single["rule"]
        assert (None if pd.isna(row["owner_person_id"]) else int(row["owner_person_id"])) == single["owner_person_id"]
        assert row["chain"] == single["chain"]
        assert (None if pd.isna(row["reason"]) else row["reason"]) == single["reason"]
        unit = None if pd.isna(row["frontage_unit_id"]) else int(row["frontage_unit_id"])
        assert unit == single["frontage_unit_id"]


def test_a_frontage_change_renews_the_routing_snapshot(shatin):
    """The snapshot carries the units and agreements (the batch's unit step): editing them moves data_version,
    so every process rebuilds its snapshot (gisgrid.routing.snapshot)."""
    from gisgrid.routing.snapshot import data_version

    with shatin.connect() as conn, conn.begin() as tx:
        before = data_version(conn)
        conn.execute(
            sa.text(
                "UPDATE frontage_agreement SET expires_on = expires_on WHERE id = (SELECT min(id) FROM frontage_agreement)"
            )
        )
        middle = data_version(conn)
        conn.execute(sa.text("UPDATE frontage_unit SET name = name WHERE id = (SELECT min(id) FROM frontage_unit)"))
        assert before < middle < data_version(conn)
        tx.rollback()
