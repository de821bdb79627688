"""``gisgrid import LAYER FILE``: validated rows into the database, in one transaction.

Every row of the file ends up either stored or listed with its row number
and reason.  With ``strict=True`` a single bad row loads nothing.

Columns are read by their names in Chinese or English (编号 → id, 地点 →
address, :mod:`gisgrid.io.fields`); the columns not used are named in the
summary.  A text longer than its database column (an id of 65 characters) or
than ``max_text_chars`` refuses its row.  Imports are idempotent: a report with
the source and id of a stored one updates it, and a file imported before (the
same bytes) is recognised and not imported again unless asked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gisgrid import crs, timeutil
from gisgrid.config import Settings, load_settings
from gisgrid.db import sql as dbsql
from gisgrid.db.areas import served_areas
from gisgrid.db.layers import insert_frame
from gisgrid.errors import FileFormatError, InputError
from gisgrid.io import tables
from gisgrid.io.fields import recognise_columns
from gisgrid.io.rows import RowProblems, check_text
from gisgrid.shapes import as_multi

LOGGER = logging.getLogger(__name__)

LEVELS = {
    "county": "county",
    "县": "county",
    "区": "county",
    "县/区": "county",
    "town": "town",
    "镇": "town",
    "乡": "town",
    "街道": "town",
    "乡镇": "town",
    "community": "community",
    "社区": "community",
    "村": "community",
}
LEVEL_ORDER = {"county": 0, "town": 1, "community": 2}
ROLES = {"总街长", "一级街长", "二级街长", "段长", "网格员", "门前三包"}
TARGET_TYPES = {"jurisdiction", "street", "segment", "cell"}
IMPORTABLE = ("jurisdictions", "streets", "segments", "cells", "owners", "reports", "addresses", "buildings")


@dataclass
class Problem:
    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


@dataclass
class ImportSummary:
    """What an import did: rows in = ``inserted + updated + len(rejected)``.

    ``renamed`` are the columns read by another name (编号 → id), ``unused``
    the columns nothing was read from; ``previous`` says when the same file
    (by checksum) was imported before, if it was and nothing was imported now.
    """

    layer: str
    total: int
    inserted: int = 0
    rejected: list[Problem] = field(default_factory=list)
    repaired: list[Problem] = field(default_factory=list)
    updated: int = 0
    renamed: dict[str, str] = field(default_factory=dict)
    unused: tuple[str, ...] = ()
    previous: str | None = None
    checksum: str = ""

    def lines(self) -> list[str]:
        if self.previous is not None:
            return [f"{self.layer}: {self.previous}"]
        stored = self.inserted + self.updated
        how = f" ({self.inserted} new, {self.updated} updated)" if self.updated else ""
        out = [
            f"{self.layer}: {stored} of {self.total} rows imported{how}, {len(self.rejected)} skipped, "
            f"{len(self.repaired)} repaired"
        ]
        if self.renamed:
            out.append("  columns read as: " + ", ".join(f"{c} → {f}" for c, f in self.renamed.items()))
        if self.unused:
            out.append(f"  columns not used: {', '.join(self.unused)} (read one as a field with --map FIELD=COLUMN)")
        out += [f"  skipped {p}" for p in sorted(self.rejected, key=lambda p: p.row)]
        out += [f"  repaired {p}" for p in sorted(self.repaired, key=lambda p: p.row)]
        return out


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _date(value, *, row: int, column: str) -> dt.date | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return pd.Timestamp(text).date()
    except (ValueError, TypeError):
        raise InputError(f"unparseable date {text!r}", row=row, column=column) from None


def read_table(path: str | Path, *, sheet: str | None = None) -> tuple[pd.DataFrame, dict[int, str]]:
    """A table without geometry (owners), by the one table reader (:mod:`gisgrid.io.tables`); cells as text.

    Returns the rows with a ``row`` column of 1-based data row numbers, and the
    rows that could not be read (row number → reason).
    """
    path = Path(path)
    if path.suffix.lower() not in {".csv", ".txt", ".tsv", ".xlsx", ".xlsm"}:
        raise FileFormatError(f"unsupported format {path.suffix or '(none)'} for a table; use .csv or .xlsx")
    _, chunk = tables.read_table(path, sheet=sheet)
    if not len(chunk.frame) and not chunk.malformed:
        raise FileFormatError(f"{path.name} has no data rows")
    return chunk.frame.reset_index(), chunk.malformed


class _Importer:
    expected_geom: str | None = None
    #: The fields the importer reads (a column of another name is read as one: :mod:`gisgrid.io.fields`).
    fields: tuple[str, ...] = ()
    #: This layer's own names for a field, tried before the common ones.
    aliases: dict[str, tuple[str, ...]] = {}
    #: Field → the (table, column) it is stored in, for fields stored in a column of fixed width.
    widths: dict[str, tuple[str, str]] = {}

    def __init__(
        self,
        conn: sa.Connection,
        summary: ImportSummary,
        *,
        jurisdiction_code: str | None = None,
        settings: Settings | None = None,
    ):
        self.conn = conn
        self.summary = summary
        self.jurisdiction_code = jurisdiction_code
        self.settings = settings or load_settings()

    def timezone_of_import(self, default: str) -> str:
        """The time zone of ``--jurisdiction`` (its own or inherited), else ``default``."""
        return dbsql.timezone_of_jurisdiction(self.conn, self.jurisdiction_code, default)

    def reject(self, row: int, reason: str) -> None:
        self.summary.rejected.append(Problem(int(row), reason))

    def jurisdiction_ids(self) -> dict[str, int]:
        return dict(self.conn.execute(sa.text("SELECT code, id FROM jurisdiction")).all())

    def fixed_jurisdiction(self, ids: dict[str, int]) -> int | None:
        """The id of ``--jurisdiction`` (every row belongs to it), or None when not given."""
        if not self.jurisdiction_code:
            return None
        if self.jurisdiction_code not in ids:
            raise InputError(f"jurisdiction {self.jurisdiction_code} not found")
        return ids[self.jurisdiction_code]

    def row_jurisdiction(self, rec, ids: dict[str, int], fixed: int | None) -> tuple[bool, int | None]:
        """(ok, id) of a row's jurisdiction: ``--jurisdiction``, else its ``jurisdiction`` code column
        (None: placed spatially later).  An unknown code rejects the row."""
        if fixed is not None:
            return True, fixed
        code = _text(getattr(rec, "jurisdiction", None))
        if code and code not in ids:
            self.reject(rec.row, f"jurisdiction {code} not found")
            return False, None
        return True, ids.get(code) if code else None

    def place_in_towns(self, table: str, point_sql: str) -> None:
        """Rows without a stated jurisdiction belong to the town containing ``point_sql``."""
        self.conn.execute(
            sa.text(f"""
            UPDATE {table} t SET jurisdiction_id = j.id FROM jurisdiction j
            WHERE t.jurisdiction_id IS NULL AND j.level = 'town' AND ST_Contains(j.geom, {point_sql})""")
        )


class _Jurisdictions(_Importer):
    expected_geom = "polygon"
    fields = ("code", "name", "level", "parent_code")
    aliases = {"code": ("编号",)}
    widths = {"code": ("jurisdiction", "code"), "parent_code": ("jurisdiction", "code")}

    def run(self, frame: gpd.GeoDataFrame) -> int:
        ids = self.jurisdiction_ids()
        frame = frame.copy()
        frame["level_norm"] = frame.get("level", pd.Series(index=frame.index, dtype=object)).map(
            lambda v: LEVELS.get(_text(v) or "")
        )
        frame["order_norm"] = frame["level_norm"].map(LEVEL_ORDER).fillna(9)
        inserted = 0
        for rec in frame.sort_values(["order_norm", "row"]).itertuples():
            code, name = _text(getattr(rec, "code", None)), _text(getattr(rec, "name", None))
            if not code or not name:
                self.reject(rec.row, "code and name are required")
                continue
            if rec.level_norm is None:
                self.reject(rec.row, f"level {getattr(rec, 'level', None)!r} is not county, town or community")
                continue
            if code in ids:
                self.reject(rec.row, f"duplicate jurisdiction code {code}")
                continue
            parent_code = _text(getattr(rec, "parent_code", None))
            if parent_code and parent_code not in ids:
                self.reject(rec.row, f"parent {parent_code} not found")
                continue
            c = rec.geometry.centroid
            (ids[code],) = insert_frame(
                self.conn,
                "jurisdiction",
                pd.DataFrame(
                    [
                        {
                            "code": code,
                            "name": name,
                            "level": rec.level_norm,
                            "parent_id": ids.get(parent_code),
                            "metric_epsg": crs.metric_crs_for(c.x, c.y),
                            "geom": as_multi(rec.geometry),
                        }
                    ]
                ),
            )
            inserted += 1
        return inserted


class _Streets(_Importer):
    expected_geom = "line"
    fields = ("name", "aliases", "name_en", "name_osm", "road_class", "highway", "jurisdiction", "id", "osm_id")
    widths = {
        "road_class": ("street", "road_class"),
        "highway": ("street", "road_class"),
        "id": ("street", "source_id"),
        "osm_id": ("street", "source_id"),
    }

    def run(self, frame: gpd.GeoDataFrame) -> int:
        ids = self.jurisdiction_ids()
        fixed = self.fixed_jurisdiction(ids)
        rows = []
        for rec in frame.itertuples():
            name = _text(getattr(rec, "name", None))
            if not name:
                self.reject(rec.row, "street name is empty")
                continue
            ok, jid = self.row_jurisdiction(rec, ids, fixed)
            if not ok:
                continue
            aliases = [
                a.strip()
                for a in (_text(getattr(rec, "aliases", None)) or "").replace("；", ";").split(";")
                if a.strip()
            ]
            for extra in ("name_en", "name_osm"):
                v = _text(getattr(rec, extra, None))
                if v and v != name and v not in aliases:
                    aliases.append(v)
            rows.append(
                {
                    "name": name,
                    "aliases": aliases,
                    "road_class": _text(getattr(rec, "road_class", None)) or _text(getattr(rec, "highway", None)),
                    "jurisdiction_id": jid,
                    "source_id": _text(getattr(rec, "id", None)) or _text(getattr(rec, "osm_id", None)),
                    "geom": as_multi(rec.geometry),
                }
            )
        insert_frame(self.conn, "street", pd.DataFrame(rows), returning=None)
        if fixed is None and rows:  # placed by their midpoint
            self.place_in_towns("street", "ST_LineInterpolatePoint(ST_GeometryN(t.geom, 1), 0.5)")
        return len(rows)


class _Segments(_Importer):
    """Segment areas (polygons) naming their street; the centerline is the street inside the area."""

    expected_geom = "polygon"
    fields = ("street", "name", "seq", "from_name", "to_name")
    aliases = {"street": ("路名", "道路名称")}

    def run(self, frame: gpd.GeoDataFrame) -> int:
        inserted = 0
        for rec in frame.itertuples():
            street = _text(getattr(rec, "street", None))
            name = _text(getattr(rec, "name", None)) or street
            if not street:
                self.reject(rec.row, "street is required")
                continue
            hit = self.conn.execute(
                sa.text("""
                SELECT s.id, s.road_class, ST_AsBinary(ST_LineMerge(ST_CollectionExtract(
                    ST_Intersection(s.geom, ST_GeomFromWKB(:a, 4326)), 2))) AS line
                FROM street s WHERE s.name = :street AND s.geom && ST_GeomFromWKB(:a, 4326)
                ORDER BY ST_Length(ST_Intersection(s.geom, ST_GeomFromWKB(:a, 4326))) DESC LIMIT 1"""),
                {"a": shapely.to_wkb(rec.geometry), "street": street},
            ).first()
            if hit is None or hit.line is None:
                self.reject(rec.row, f"no street named {street!r} passes through this area")
                continue
            line = shapely.from_wkb(bytes(hit.line))
            if line.geom_type == "MultiLineString":
                line = max(line.geoms, key=lambda g: g.length)
            if line.is_empty or line.geom_type != "LineString":
                self.reject(rec.row, f"street {street!r} only touches this area")
                continue
            epsg = crs.metric_crs_for(*line.centroid.coords[0])
            length_m = float(gpd.GeoSeries([line], crs=crs.STORAGE_SRID).to_crs(epsg).length.iloc[0])
            insert_frame(
                self.conn,
                "segment",
                pd.DataFrame(
                    [
                        {
                            "street_id": hit.id,
                            "seq": int(_text(getattr(rec, "seq", None)) or 0),
                            "name": name,
                            "from_name": _text(getattr(rec, "from_name", None)),
                            "to_name": _text(getattr(rec, "to_name", None)),
                            "road_class": hit.road_class,
                            "length_m": length_m,
                            "geom": line,
                            "area": as_multi(rec.geometry),
                        }
                    ]
                ),
                returning=None,
                geometry_columns=("geom", "area"),
            )
            inserted += 1
        return inserted


class _Cells(_Importer):
    expected_geom = "polygon"
    fields = ("code", "jurisdiction")
    aliases = {"code": ("编号",)}
    widths = {"code": ("grid_cell", "code"), "jurisdiction": ("jurisdiction", "code")}

    def run(self, frame: gpd.GeoDataFrame) -> int:
        ids = self.jurisdiction_ids()
        existing = {c for (c,) in self.conn.execute(sa.text("SELECT code FROM grid_cell"))}
        rows = []
        for rec in frame.itertuples():
            code = _text(getattr(rec, "code", None))
            if not code:
                self.reject(rec.row, "cell code is empty")
                continue
            if code in existing:
                self.reject(rec.row, f"duplicate cell code {code}")
                continue
            jcode = _text(getattr(rec, "jurisdiction", None)) or self.jurisdiction_code
            if jcode and jcode not in ids:
                self.reject(rec.row, f"jurisdiction {jcode} not found")
                continue
            existing.add(code)
            rows.append(
                {"code": code, "jurisdiction_id": ids.get(jcode) if jcode else None, "geom": as_multi(rec.geometry)}
            )
        insert_frame(self.conn, "grid_cell", pd.DataFrame(rows), returning=None)
        return len(rows)


class _Reports(_Importer):
    """Reports: a time without an offset is local time where the report is (:mod:`gisgrid.timeutil`);
    the deadline ``due_at`` comes from :func:`gisgrid.cases.workflow.deadlines`."""

    expected_geom = "point"
    fields = ("id", "category", "reported_at", "status", "source", "address", "description")
    widths = {"id": ("report", "external_id"), "source": ("report", "source"), "status": ("report", "status")}

    def run(self, frame: gpd.GeoDataFrame) -> int:
        from gisgrid.cases.workflow import WorkingTime, deadlines  # the one deadline rule (pure)

        cats = dict(self.conn.execute(sa.text("SELECT code, id FROM category")).all())
        names = dict(self.conn.execute(sa.text("SELECT name, id FROM category")).all())
        limits = {
            i: (h, bool(w))
            for i, h, w in self.conn.execute(sa.text("SELECT id, deadline_hours, working_time FROM category")).all()
        }
        rows = []
        for rec in frame.itertuples():
            cat = _text(getattr(rec, "category", None))
            cid = cats.get(cat) or names.get(cat)
            if cat and cid is None:
                self.reject(rec.row, f"unknown category {cat!r}")
                continue
            when = _text(getattr(rec, "reported_at", None))
            try:
                ts = pd.Timestamp(when) if when else None
            except (ValueError, TypeError):
                self.reject(rec.row, f"unparseable reported_at {when!r}")
                continue
            if ts is None or pd.isna(ts):
                self.reject(rec.row, "reported_at is required")
                continue
            status = _text(getattr(rec, "status", None)) or "reported"
            from gisgrid.db.schema import REPORT_STATUSES

            if status not in REPORT_STATUSES:
                self.reject(rec.row, f"status {status!r} is not one of {', '.join(REPORT_STATUSES)}")
                continue
            rows.append(
                {
                    "external_id": _text(getattr(rec, "id", None)),
                    "geom": rec.geometry,
                    "category_id": cid,
                    "reported_at": ts.to_pydatetime(),  # naive: local, placed below
                    "source": _text(getattr(rec, "source", None)),
                    "address": _text(getattr(rec, "address", None)),
                    "description": _text(getattr(rec, "description", None)),
                    "status": status,
                }
            )
        if rows:
            settings = self.settings
            zones = dbsql.timezones_at_points(
                self.conn,
                [r["geom"].x if r["geom"] is not None else np.nan for r in rows],
                [r["geom"].y if r["geom"] is not None else np.nan for r in rows],
                self.timezone_of_import(settings.timezone),
            )
            for r, tz in zip(rows, zones):
                r["reported_at"] = timeutil.localize(r["reported_at"], tz)
            limit = [limits.get(r["category_id"], (None, False)) for r in rows]
            due = deadlines(
                [r["reported_at"] for r in rows],
                [h for h, _ in limit],
                [w for _, w in limit],
                calendar=WorkingTime.from_settings(settings),
                tz=zones,
            )
            for r, d in zip(rows, due):
                r["due_at"] = None if pd.isna(d) else d.to_pydatetime()
        return self.store(rows, with_status="status" in frame.columns)

    #: Columns an import updates in a stored report of the same source and id.  The case's own state is kept:
    #: its status unless the file has one (a case dispatched since is not set back to 'reported'), and its
    #: deadline once someone has taken the case up (an extension granted is not undone).
    UPDATED = ("geom", "category_id", "reported_at", "due_at", "address", "description")

    def store(self, rows: list[dict], *, with_status: bool) -> int:
        """Insert the new reports; a row whose source and id are stored already updates that report.

        Returns the number inserted; ``summary.updated`` counts the updated ones.
        """
        keyed = [r for r in rows if r["external_id"]]
        stored: set[tuple[str, str]] = set()
        if keyed:
            # one import at a time looks ids up and stores them: two at once would both find none
            self.conn.execute(sa.text("LOCK TABLE report IN SHARE ROW EXCLUSIVE MODE"))
            stored = {
                (e, s)
                for e, s in self.conn.execute(
                    sa.text(
                        "SELECT DISTINCT external_id, coalesce(source, '') FROM report WHERE external_id = ANY(:ids)"
                    ),
                    {"ids": sorted({r["external_id"] for r in keyed})},
                )
            }

        def known(r: dict) -> bool:
            return bool(r["external_id"]) and (r["external_id"], r["source"] or "") in stored

        updates = [r for r in rows if known(r)]
        if updates:
            columns = (*self.UPDATED, "status") if with_status else self.UPDATED
            how = {
                "geom": f"ST_SetSRID(ST_GeomFromWKB(:geom), {crs.STORAGE_SRID})",
                "due_at": "CASE WHEN status = 'reported' THEN :due_at ELSE due_at END",
            }
            sets = ", ".join(f"{c} = {how.get(c, ':' + c)}" for c in columns)
            self.conn.execute(
                sa.text(
                    f"UPDATE report SET {sets} "
                    "WHERE external_id = :external_id AND coalesce(source, '') = coalesce(:source, '')"
                ),
                [{**{c: r[c] for c in columns}, "geom": shapely.to_wkb(r["geom"]), **_key(r)} for r in updates],
            )
        inserts = [r for r in rows if not known(r)]
        insert_frame(self.conn, "report", pd.DataFrame(inserts), returning=None)
        self.summary.updated = len(updates)
        return len(inserts)


def _key(row: dict) -> dict:
    return {"external_id": row["external_id"], "source": row["source"]}


class _Owners(_Importer):
    fields = ("target_type", "target", "role", "person", "phone", "title", "department", "valid_from", "valid_to")
    aliases = {"person": ("姓名",)}
    widths = {"phone": ("person", "phone"), "role": ("owner_assignment", "role")}

    def run(self, frame: pd.DataFrame) -> int:
        depts = dict(self.conn.execute(sa.text("SELECT code, id FROM department")).all())
        dept_names = dict(self.conn.execute(sa.text("SELECT name, id FROM department")).all())
        lookups = {
            "jurisdiction": dict(self.conn.execute(sa.text("SELECT code, id FROM jurisdiction")).all()),
            "cell": dict(self.conn.execute(sa.text("SELECT code, id FROM grid_cell")).all()),
            "street": dict(self.conn.execute(sa.text("SELECT name, min(id) FROM street GROUP BY name")).all()),
            "segment": {str(i): i for (i,) in self.conn.execute(sa.text("SELECT id FROM segment"))},
        }
        people: dict[tuple, int] = {}
        inserted = 0
        for rec in frame.to_dict("records"):
            row = rec["row"]
            ttype = _text(rec.get("target_type"))
            target = _text(rec.get("target"))
            role = _text(rec.get("role"))
            if ttype not in TARGET_TYPES:
                self.reject(row, f"target_type {ttype!r} is not one of {', '.join(sorted(TARGET_TYPES))}")
                continue
            if role not in ROLES:
                self.reject(row, f"role {role!r} is not one of {', '.join(sorted(ROLES))}")
                continue
            tid = lookups[ttype].get(target or "")
            if tid is None:
                self.reject(row, f"{ttype} {target!r} not found")
                continue
            try:
                vf = _date(rec.get("valid_from"), row=row, column="valid_from") or dt.date.today()
                vt = _date(rec.get("valid_to"), row=row, column="valid_to")
            except InputError as exc:
                self.reject(row, exc.reason)
                continue
            if vt is not None and vt <= vf:
                self.reject(row, f"valid_to {vt} is not after valid_from {vf}")
                continue
            person, dept = _text(rec.get("person")), _text(rec.get("department"))
            if bool(person) == bool(dept):
                self.reject(row, "give exactly one of person or department")
                continue
            pid = did = None
            if dept:
                did = depts.get(dept) or dept_names.get(dept)
                if did is None:
                    self.reject(row, f"department {dept!r} not found")
                    continue
            else:
                key = (person, _text(rec.get("phone")))
                if key not in people:
                    (people[key],) = insert_frame(
                        self.conn,
                        "person",
                        pd.DataFrame([{"name": person, "phone": key[1], "title": _text(rec.get("title"))}]),
                    )
                pid = people[key]
            insert_frame(
                self.conn,
                "owner_assignment",
                pd.DataFrame(
                    [
                        {
                            "person_id": pid,
                            "department_id": did,
                            "target_type": ttype,
                            "target_id": tid,
                            "role": role,
                            "valid_from": vf,
                            "valid_to": vt,
                        }
                    ]
                ).astype(object),
                returning=None,
            )
            inserted += 1
        return inserted


class _Addresses(_Importer):
    """Address points (门牌): ``street`` and ``housenumber`` (text), optional ``name``, ``id``/``source_id``.

    A row with a ``name`` but no street is a landmark or POI (学校, 医院, 市场).
    """

    expected_geom = "point"
    fields = ("street", "housenumber", "name", "source_id", "id", "osm_id", "jurisdiction")
    aliases = {"street": ("路名", "道路名称")}
    widths = {"source_id": ("address_point", "source_id"), "id": ("address_point", "source_id")}

    def run(self, frame: gpd.GeoDataFrame) -> int:
        ids = self.jurisdiction_ids()
        fixed = self.fixed_jurisdiction(ids)
        rows = []
        for rec in frame.itertuples():
            street = _text(getattr(rec, "street", None))
            name = _text(getattr(rec, "name", None))
            if not street and not name:
                self.reject(rec.row, "street and name are empty: give a street (address) or a name (landmark)")
                continue
            ok, jid = self.row_jurisdiction(rec, ids, fixed)
            if not ok:
                continue
            rows.append(
                {
                    "street": street,
                    "housenumber": _text(getattr(rec, "housenumber", None)),
                    "name": name,
                    "source_id": _text(getattr(rec, "source_id", None))
                    or _text(getattr(rec, "id", None))
                    or _text(getattr(rec, "osm_id", None)),
                    "jurisdiction_id": jid,
                    "geom": rec.geometry,
                }
            )
        insert_frame(self.conn, "address_point", pd.DataFrame(rows), returning=None)
        if fixed is None and rows:
            self.place_in_towns("address_point", "t.geom")
        return len(rows)


class _Buildings(_Importer):
    """Building footprints (polygons) for the basemap: optional ``name``, ``building``/``kind`` (its type) and
    ``id``/``osm_id``/``source_id``; each belongs to the town holding it, or to ``--jurisdiction``."""

    expected_geom = "polygon"
    fields = ("name", "kind", "building", "source_id", "id", "osm_id", "jurisdiction")
    aliases = {"name": ("建筑名称", "楼名"), "kind": ("建筑类型", "类型")}
    widths = {
        "kind": ("building", "kind"),
        "building": ("building", "kind"),
        "source_id": ("building", "source_id"),
        "id": ("building", "source_id"),
        "osm_id": ("building", "source_id"),
    }

    def run(self, frame: gpd.GeoDataFrame) -> int:
        ids = self.jurisdiction_ids()
        fixed = self.fixed_jurisdiction(ids)
        rows = []
        for rec in frame.itertuples():
            ok, jid = self.row_jurisdiction(rec, ids, fixed)
            if not ok:
                continue
            rows.append(
                {
                    "name": _text(getattr(rec, "name", None)),
                    "kind": _text(getattr(rec, "kind", None)) or _text(getattr(rec, "building", None)),
                    "source_id": _text(getattr(rec, "source_id", None))
                    or _text(getattr(rec, "id", None))
                    or _text(getattr(rec, "osm_id", None)),
                    "jurisdiction_id": jid,
                    "geom": as_multi(rec.geometry),
                }
            )
        insert_frame(self.conn, "building", pd.DataFrame(rows), returning=None)
        if fixed is None and rows:
            self.place_in_towns("building", "ST_PointOnSurface(t.geom)")
        return len(rows)


_IMPORTERS = {
    "jurisdictions": _Jurisdictions,
    "streets": _Streets,
    "segments": _Segments,
    "cells": _Cells,
    "reports": _Reports,
    "owners": _Owners,
    "addresses": _Addresses,
    "buildings": _Buildings,
}


def import_file(
    conn: sa.Connection,
    layer_name: str,
    path: str | Path,
    *,
    crs_name: str | None = None,
    mapping: dict | None = None,
    sheet: str | None = None,
    jurisdiction_code: str | None = None,
    strict: bool = False,
    x: str | None = None,
    y: str | None = None,
    wkt: str | None = None,
    settings: Settings | None = None,
    again: bool = False,
) -> ImportSummary:
    """Import ``path`` into ``layer_name`` on ``conn`` (the caller's transaction).

    ``settings`` (default: loaded) give the ``timezone`` of report times
    written without an offset, unless the place's jurisdiction has its own,
    the working time of deadlines and ``max_text_chars``.

    Columns named in Chinese or English are read as the layer's fields
    (:func:`gisgrid.io.fields.recognise_columns`; ``mapping`` names others),
    and the columns not used are listed in the summary.  A row with a text
    longer than its database column, or than ``max_text_chars``, is rejected.
    A report whose source and id are stored already is updated, not stored
    twice.  A file whose bytes were imported before into the same layer is
    not imported again (``summary.previous`` says when it was) unless ``again``.

    Raises
    ------
    InputError
        For whole-file problems, or with ``strict`` when any row was rejected
        (the caller's transaction is then rolled back by the exception).
    """
    if layer_name not in _IMPORTERS:
        raise InputError(f"cannot import {layer_name!r}; layers: {', '.join(IMPORTABLE)}")
    importer_cls = _IMPORTERS[layer_name]
    settings = settings or load_settings()
    checksum = _checksum(Path(path), sheet) if Path(path).is_file() else ""
    previous = None if again or not checksum else _previous_import(conn, layer_name, checksum, Path(path).name)
    if previous is not None:
        return ImportSummary(layer_name, total=0, previous=previous, checksum=checksum)
    if layer_name == "owners":
        frame, malformed = read_table(path, sheet=sheet)
        if mapping:
            missing = [src for src in mapping.values() if src not in frame.columns]
            if missing:
                raise InputError(f"no column {', '.join(missing)}; columns: {', '.join(frame.columns[1:])}")
            frame = frame.rename(columns={v: k for k, v in mapping.items()})
        summary = ImportSummary(
            layer_name,
            total=len(frame) + len(malformed),
            rejected=[Problem(row, reason) for row, reason in malformed.items()],
        )
    else:
        from gisgrid.io import read_layer

        # the areas the deployment serves: the swapped lon/lat check of gisgrid assign, the same rule
        extent = served_areas(conn) or None
        result = read_layer(
            path,
            crs=crs_name,
            mapping=mapping,
            sheet=sheet,
            x=x,
            y=y,
            wkt=wkt,
            expected_geom=importer_cls.expected_geom,
            extent=extent,
        )
        frame = result.frame
        summary = ImportSummary(
            layer_name,
            total=result.total,
            rejected=[Problem(p.row, p.reason) for p in result.rejected],
            repaired=[Problem(p.row, p.reason) for p in result.repaired],
        )
    summary.checksum = checksum
    frame = _fields(conn, frame, importer_cls, summary, settings)
    importer = importer_cls(conn, summary, jurisdiction_code=jurisdiction_code, settings=settings)
    summary.inserted = importer.run(frame) if len(frame) else 0
    if strict and summary.rejected:
        raise InputError(
            f"{len(summary.rejected)} of {summary.total} rows rejected, nothing imported (--strict): "
            + "; ".join(str(p) for p in sorted(summary.rejected, key=lambda p: p.row)[:20])
        )
    _log_import(conn, summary, Path(path).name)
    return summary


#: Columns of a read table that are not the file's attributes.
_NOT_ATTRIBUTES = ("row", "geometry")


def _fields(
    conn: sa.Connection, frame: pd.DataFrame, importer_cls: type[_Importer], summary: ImportSummary, settings: Settings
) -> pd.DataFrame:
    """The rows the importer gets: columns read as its fields, rows with a text too long rejected.

    ``summary`` gets the columns read by another name, the columns not used and
    the rejected rows (their numbers, and the column and its length).
    """
    found = recognise_columns(frame.columns, importer_cls.fields, aliases=importer_cls.aliases, used=_NOT_ATTRIBUTES)
    summary.renamed, summary.unused = found.renames, found.unused
    fields_of = {column: found.renames.get(column, column) for column in frame.columns}
    widths = _column_widths(conn, importer_cls.widths)
    limits = {column: widths[f] for column, f in fields_of.items() if f in widths}
    attributes = [c for c in frame.columns if c not in _NOT_ATTRIBUTES]
    problems = RowProblems(len(frame), ("bad_text", "duplicate_id"))
    check_text(frame[attributes], problems, "bad_text", limit=settings.max_text_chars, limits=limits)
    if "id" in found.renames.values():  # the reader checked a column named id only
        from gisgrid.io._validate import Findings, check_duplicate_ids

        findings = Findings(len(frame))
        column = next(c for c, f in found.renames.items() if f == "id")
        check_duplicate_ids(frame[column], frame["row"].to_numpy(), findings, column=column)
        for pos, reasons in findings.rejected.items():
            problems.add(np.array([pos]), "duplicate_id", reasons)
    rows = frame["row"].to_numpy()
    for pos, reason in problems.reasons().items():
        summary.rejected.append(Problem(int(rows[pos]), reason))
    return frame.loc[problems.ok].rename(columns=found.renames)


def _column_widths(conn: sa.Connection, wanted: dict[str, tuple[str, str]]) -> dict[str, int]:
    """Field → characters its database column holds, for the fields stored in a column of fixed width."""
    if not wanted:
        return {}
    found = conn.execute(
        sa.text(
            "SELECT table_name, column_name, character_maximum_length FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND character_maximum_length IS NOT NULL "
            "AND table_name = ANY(:tables)"
        ),
        {"tables": sorted({table for table, _ in wanted.values()})},
    ).all()
    width = {(table, column): int(n) for table, column, n in found}
    return {f: width[where] for f, where in wanted.items() if where in width}


def _checksum(path: Path, sheet: str | None = None) -> str:
    """SHA-256 of a file's bytes (and of the sheet named, another sheet being other data), as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if sheet is not None:
        digest.update(f"\0sheet={sheet}".encode())
    return digest.hexdigest()


def _previous_import(conn: sa.Connection, layer: str, checksum: str, name: str) -> str | None:
    """Why the file is not imported again: when its bytes were imported into ``layer`` before; None if never."""
    before = conn.execute(
        sa.text(
            "SELECT file_name, imported_at, rows, inserted + updated AS stored FROM import_log "
            "WHERE layer = :layer AND checksum = :checksum ORDER BY id DESC LIMIT 1"
        ),
        {"layer": layer, "checksum": checksum},
    ).first()
    if before is None:
        return None
    as_name = "" if before.file_name == name else f" as {before.file_name}"
    return (
        f"{name} was imported before{as_name} on {before.imported_at:%Y-%m-%d %H:%M} "
        f"({before.stored} of {before.rows} rows stored; the same file, SHA-256 {checksum[:12]}…): "
        "nothing imported again; add --again to import it anyway"
    )


def _log_import(conn: sa.Connection, summary: ImportSummary, name: str) -> None:
    """Record an imported file (in the import's transaction: a rolled-back import leaves no record)."""
    if not summary.checksum:
        return
    conn.execute(
        sa.text(
            "INSERT INTO import_log (layer, checksum, file_name, rows, inserted, updated, rejected) "
            "VALUES (:layer, :checksum, :name, :rows, :inserted, :updated, :rejected)"
        ),
        {
            "layer": summary.layer,
            "checksum": summary.checksum,
            "name": name,
            "rows": summary.total,
            "inserted": summary.inserted,
            "updated": summary.updated,
            "rejected": len(summary.rejected),
        },
    )
