"""The assignment engine on stored data: rule sets, indexes and owners loaded from PostGIS.

:class:`Deployment` bundles what routing needs, loaded once from the
database: the rule set (categories and tolerance), one
:class:`gisgrid.routing.index.AssignmentIndex` per metric CRS in use (a deployment
usually has one; the demo has four towns in three zones) and the owner
history.  It answers single points (the API), tables and files (batches),
and re-assigns stored reports with one bulk read and one bulk write
(``COPY``) around the in-process engine — measured faster than a set-based
``INSERT … SELECT`` join on 2 cores (see ``bench/assign.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
import sqlalchemy as sa

from gisgrid import crs as crsmod
from gisgrid import timeutil
from gisgrid.config import Settings
from gisgrid.db import sql
from gisgrid.db.areas import served_areas
from gisgrid.errors import InputError
from gisgrid.io.points import PointError, check_point
from gisgrid.ownership.history import UNIT_ROLES, ChainTopology, OwnerHistory, OwnerLookup, as_days, chain_text
from gisgrid.routing.files import AssignSummary
from gisgrid.routing.files import assign_file as _assign_file
from gisgrid.routing.frames import assign_frame
from gisgrid.routing.frontage import FrontageUnits, route_table_to_units
from gisgrid.routing.index import AssignmentIndex, PartitionedIndex
from gisgrid.routing.rules import RuleSet

LOGGER = logging.getLogger(__name__)

#: Who answers for a target of each type, in order of preference: a unit's owning roles
#: (:data:`gisgrid.ownership.history.UNIT_ROLES`), for a jurisdiction (属地兜底) its grid worker or chiefs.
OWNER_ROLES = {
    "segment": UNIT_ROLES["segment"],
    "cell": UNIT_ROLES["cell"],
    "jurisdiction": ("网格员", "一级街长", "总街长"),
}
OWNER_RESULT_COLUMNS = ("owner_name", "owner_person_id", "owner_department_id", "chain")


def _gdf(frame: pd.DataFrame, column: str = "geom") -> gpd.GeoDataFrame:
    geoms = (
        shapely.from_wkb(frame.pop(column).map(lambda v: None if v is None else bytes(v)).to_numpy())
        if len(frame)
        else np.array([], dtype=object)
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, index=frame.index, crs=crsmod.STORAGE_SRID))


def load_ruleset(conn: sa.Connection, settings: Settings) -> RuleSet:
    """The rule set from the category table; its version is a digest of the rules themselves."""
    cats = pd.read_sql_query(sa.text("SELECT code, routing, department_id FROM category ORDER BY code"), conn)
    dept_ids = dict(conn.execute(sa.text("SELECT code, id FROM department")).all())
    rows = []
    for rec in cats.to_dict("records"):
        routing = dict(rec["routing"] or {})
        if routing.get("mode") == "by_road_class":
            # the demo and imports name departments by code; the engine wants ids
            routing["road_classes"] = {rc: dept_ids.get(d, d) for rc, d in routing.get("road_classes", {}).items()}
        if routing.get("mode") == "department" and rec["department_id"] is None and "department_id" not in routing:
            routing = {"mode": "location"}  # no department to route to: by location
        rows.append({"code": rec["code"], "routing": routing, "department_id": rec["department_id"]})
    address = [settings.address_street_tolerance_m, settings.address_intersection_rule]
    digest = hashlib.sha1(
        json.dumps([settings.nearest_tolerance_m, rows, *address], sort_keys=True, default=str).encode()
    ).hexdigest()[:8]
    return RuleSet.from_categories(
        rows,
        version=f"r{digest}",
        tolerance_m=settings.nearest_tolerance_m,
        address_tolerance_m=settings.address_street_tolerance_m,
        intersection_rule=settings.address_intersection_rule,
    )


@dataclass
class _Part:
    epsg: int
    bbox: tuple[float, float, float, float]
    index: AssignmentIndex


@dataclass
class Deployment:
    """Everything routing needs, loaded from the database at one data version."""

    ruleset: RuleSet
    parts: list[_Part]
    owners: OwnerHistory
    topology: ChainTopology  # segment -> street -> jurisdiction -> parent, for the owner chain
    segment_info: pd.DataFrame  # id -> name, street
    cell_jurisdiction: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    #: the local day's time zone: the ``timezone`` setting, and each jurisdiction's own or inherited one
    timezone: str = Settings.timezone
    jurisdiction_timezone: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)  # target type -> {id: display name}
    owner_rows: pd.DataFrame | None = None  # the assignments, for the single-request lookup built on first use
    _owner_lookup: OwnerLookup | None = None
    _index: PartitionedIndex | None = None
    data_version: int = 0
    areas: list | None = None  # the lon/lat boxes served (gisgrid.db.areas), for the swapped lon/lat check
    #: the frontage units (门前三包) and their agreements, for the unit step of a batch (None: none to route to)
    frontage: FrontageUnits | None = None
    loaded_at: float = field(default_factory=time.monotonic)

    @property
    def extent(self) -> tuple[float, float, float, float] | None:
        if not self.parts:
            return None
        b = np.array([p.bbox for p in self.parts])
        return (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())

    @property
    def lookup(self) -> OwnerLookup:
        """Dict-based owner lookup for single points, built on first use (bulk paths never need it)."""
        if self._owner_lookup is None:
            self._owner_lookup = OwnerLookup(
                self.owner_rows
                if self.owner_rows is not None
                else pd.DataFrame(
                    columns=[
                        "id",
                        "target_type",
                        "target_id",
                        "role",
                        "valid_from",
                        "valid_to",
                        "person_id",
                        "department_id",
                        "owner_name",
                    ]
                )
            )
        return self._owner_lookup

    @property
    def jurisdiction_parent(self) -> pd.Series:
        return self.topology.jurisdiction_parent

    def target_jurisdiction(self, target_types, target_ids) -> np.ndarray:
        """The jurisdiction id of each routed target (NaN for departments and unrouted rows), vectorised."""
        types = np.asarray(pd.Series(target_types, copy=False).astype(object), dtype=object)
        ids = pd.to_numeric(pd.Series(target_ids, copy=False), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        out = np.full(len(types), np.nan)
        seg = types == "segment"
        out[seg] = self._lookup(self.topology.street_jurisdiction, self._lookup(self.topology.segment_street, ids[seg]))
        cell = types == "cell"
        out[cell] = self._lookup(self.cell_jurisdiction, ids[cell])
        jur = types == "jurisdiction"
        out[jur] = ids[jur]
        return out

    def timezones_of(self, target_types, target_ids) -> np.ndarray:
        """The local time zone of each routed target: its jurisdiction's, else the deployment's."""
        jur = self.target_jurisdiction(target_types, target_ids)
        out = np.full(len(jur), self.timezone, dtype=object)
        if self.jurisdiction_timezone:
            known = ~np.isnan(jur)
            out[known] = [self.jurisdiction_timezone.get(int(j), self.timezone) for j in jur[known]]
        return out

    def local_days(self, instants, target_types, target_ids) -> np.ndarray:
        """The local day of each instant at its routed target (:func:`gisgrid.timeutil.local_days`), vectorised."""
        instants = pd.Series(instants, copy=False).reset_index(drop=True)
        if not self.jurisdiction_timezone:  # one time zone for the whole deployment
            out = timeutil.local_days(instants, self.timezone)
        else:
            zones = self.timezones_of(target_types, target_ids)
            out = np.full(len(zones), np.datetime64("NaT"), dtype="datetime64[D]")
            for name in pd.unique(zones):
                rows = np.flatnonzero(zones == name)
                out[rows] = timeutil.local_days(instants.iloc[rows], name)
        missing = np.isnat(out)
        if missing.any():  # no time: today, as the engine dates a row without a date
            out[missing] = np.datetime64(timeutil.local_today(self.timezone), "D")
        return out

    def owner_of(self, target_type: str | None, target_id: int | None, day: dt.date):
        """(name, person id, department id) answering for one target on ``day``, or None."""
        if target_type is None or target_id is None:
            return None
        if target_type == "department":
            return self.owners.department_names.get(target_id), None, target_id
        tid = target_id
        for _ in range(4):  # 属地兜底 climbs the jurisdiction tree
            for role in OWNER_ROLES[target_type]:
                found = self.lookup.on(target_type, tid, role, day)
                if found:
                    return found
            if target_type != "jurisdiction":
                return None
            parent = self.jurisdiction_parent.get(tid)
            if parent is None or pd.isna(parent):
                return None
            tid = int(parent)
        return None

    def chain_of(self, segment_id: int | None, day: dt.date) -> str | None:
        """段长 → 二级街长 → 一级街长 → 总街长 of a segment on ``day``, as text (most specific level wins)."""
        if segment_id is None or segment_id not in self.topology.segment_street.index:
            return None
        return chain_text(self.lookup.chain(int(segment_id), day, self.topology))

    def target_name(self, target_type: str | None, target_id: int | None) -> str | None:
        if target_type is None or target_id is None:
            return None
        if target_type == "segment" and target_id in self.segment_info.index:
            info = self.segment_info.loc[target_id]
            return info["name"] if info["name"] == info["street"] else f"{info['street']} · {info['name']}"
        if target_type == "department":
            return self.owners.department_names.get(target_id)
        return self.names.get(target_type, {}).get(target_id)

    # -- routing ---------------------------------------------------------------
    @property
    def index(self) -> PartitionedIndex:
        if not self.parts:
            raise InputError("nothing to route to: the database has no segments, cells or jurisdictions")
        if self._index is None:
            self._index = PartitionedIndex([(p.bbox, p.index) for p in self.parts], areas=self.areas)
        return self._index

    def assign_table(
        self,
        frame: pd.DataFrame,
        *,
        lon: str = "lon",
        lat: str = "lat",
        crs="EPSG:4326",
        category: str | None = None,
        date: str | None = None,
        with_chain: bool = True,
        instants=None,
        address_street: str | None = None,
        cross_street: str | None = None,
    ) -> pd.DataFrame:
        """Route every row of ``frame``; returns the input columns plus result and owner columns.

        Rows in = rows out: bad rows carry ``error_code`` and ``error_message``.
        ``with_chain=False`` leaves out the chain text.  ``instants`` (one
        aware timestamp or epoch second per row) date each row by its local
        day at the place it is routed to, instead of a ``date`` column.
        ``address_street`` (and ``cross_street``) name the columns holding the
        street of each row's written address, for the address-street rule
        (:mod:`gisgrid.routing.address`).
        """
        return assign_frame(
            self.index,
            frame,
            lon=lon,
            lat=lat,
            crs=crs,
            category=category,
            date=date,
            owners=_Owners(self, with_chain=with_chain, instants=instants),
            address_street=address_street,
            cross_street=cross_street,
        )

    def assign_file(self, src, dst, *, crs, **options) -> AssignSummary:
        """Route a file of reports (CSV, XLSX, GeoJSON, GeoPackage) to another file, streamed in chunks."""
        return _assign_file(self.index, src, dst, crs=crs, owners=self, **options)

    def owners_for(
        self, target_types, target_ids, days, *, segment_ids=None, with_chain: bool = True, instants=None
    ) -> pd.DataFrame:
        """Owner (and 段长 → 总街长 chain text) of each routed target on each day, as numpy work throughout.

        ``instants`` (aware timestamps, one per row) replace ``days`` by their
        local day at each target (:meth:`local_days`).
        """
        types = np.asarray(pd.Series(target_types).astype(object), dtype=object)
        ids = pd.to_numeric(pd.Series(target_ids), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        days = (
            self.local_days(instants, types, ids)
            if instants is not None
            else days
            if isinstance(days, np.ndarray) and days.dtype == "datetime64[D]"
            else as_days(days)
        )
        n = len(types)
        name = np.full(n, None, dtype=object)
        pid = np.full(n, np.nan)
        did = np.full(n, np.nan)

        def fill(mask: np.ndarray, ttype: str, tids: np.ndarray, role: str) -> None:
            if not mask.any():
                return
            found = self.owners.owners_on(
                np.full(int(mask.sum()), ttype, dtype=object), tids[mask], days[mask], role=role
            )
            name[mask] = found["owner_name"].to_numpy(dtype=object)
            pid[mask] = found["person_id"].to_numpy(dtype=float, na_value=np.nan)
            did[mask] = found["department_id"].to_numpy(dtype=float, na_value=np.nan)

        for ttype, roles in {**OWNER_ROLES, "department": ("段长",)}.items():
            mask = types == ttype
            for role in roles:
                fill(mask & _missing(name), ttype, ids, role)
        # 属地兜底: a jurisdiction without an owner of its own answers through its parent
        jur = np.where(types == "jurisdiction", ids, np.nan)
        for _ in range(3):
            todo = (types == "jurisdiction") & _missing(name)
            if not todo.any():
                break
            jur = self._lookup(self.jurisdiction_parent, jur)
            for role in OWNER_ROLES["jurisdiction"]:
                fill(todo & ~np.isnan(jur) & _missing(name), "jurisdiction", jur, role)
        out = pd.DataFrame(
            {
                "owner_name": name,
                "owner_person_id": pd.array(pid, dtype="Float64").astype("Int64"),
                "owner_department_id": pd.array(did, dtype="Float64").astype("Int64"),
            }
        )
        if with_chain:
            seg = (
                pd.to_numeric(pd.Series(segment_ids), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                if segment_ids is not None
                else np.where(types == "segment", ids, np.nan)
            )
            chain = self.owners.chains_on(seg, days, self.topology)["chain"].to_numpy(dtype=object).copy()
            # a row the category sends to a department answers to that department alone: its chain is the
            # department, whether or not the point also lies on a segment (it was either one, issue 21)
            dept = types == "department"
            chain[dept] = name[dept]
            out["chain"] = chain
        return out

    def frontage_step(self, result: pd.DataFrame, lon, lat, categories, days, *, instants=None) -> pd.DataFrame:
        """``result`` (routed, with owners and chain) after the frontage-duty step of intake, on a whole table
        (:func:`gisgrid.routing.frontage.route_table_to_units`).

        ``days`` are the reports' local days; ``instants`` (one per row) replace them by their local day at
        the routed target, as :meth:`owners_for` dates the owners.
        """
        if instants is not None:
            days = self.local_days(instants, result["target_type"], result["target_id"])
        return route_table_to_units(result, lon, lat, categories, days, self.frontage)

    @staticmethod
    def _lookup(mapping: pd.Series, keys: np.ndarray) -> np.ndarray:
        """``mapping[key]`` for float keys (NaN where missing), vectorised through a dense array."""
        if mapping.empty:
            return np.full(len(keys), np.nan)
        index = mapping.index.to_numpy(dtype=np.int64)
        dense = np.full(int(index.max()) + 2, np.nan)
        dense[index] = mapping.to_numpy(dtype=float, na_value=np.nan)
        ok = ~np.isnan(keys) & (keys >= 0) & (keys < len(dense) - 1)
        out = np.full(len(keys), np.nan)
        out[ok] = dense[keys[ok].astype(np.int64)]
        return out


def _missing(values: np.ndarray) -> np.ndarray:
    return pd.isna(values)


def load_deployment(conn: sa.Connection, settings: Settings) -> Deployment:
    """Load the rule set, indexes and owner history at the current data version."""
    version = conn.execute(sa.text("SELECT version FROM data_version WHERE id = 1")).scalar() or 0
    ruleset = load_ruleset(conn, settings)
    segs = _gdf(
        pd.read_sql_query(
            sa.text("""
        SELECT g.id, g.road_class, g.name, s.name AS street, g.street_id, COALESCE(j.metric_epsg, 0) AS epsg,
               ST_AsBinary(g.area) AS area, ST_AsBinary(g.geom) AS geom
        FROM segment g JOIN street s ON s.id = g.street_id LEFT JOIN jurisdiction j ON j.id = s.jurisdiction_id
        ORDER BY g.id"""),
            conn,
        )
    )
    segs["area"] = (
        shapely.from_wkb(segs["area"].map(lambda v: None if v is None else bytes(v)).to_numpy()) if len(segs) else []
    )
    cells = _gdf(
        pd.read_sql_query(
            sa.text("""
        SELECT c.id, c.code, c.jurisdiction_id, COALESCE(j.metric_epsg, 0) AS epsg, ST_AsBinary(c.geom) AS geom
        FROM grid_cell c LEFT JOIN jurisdiction j ON j.id = c.jurisdiction_id ORDER BY c.id"""),
            conn,
        )
    )
    juris = _gdf(
        pd.read_sql_query(
            sa.text("""
        SELECT id, level, parent_id, code, name, COALESCE(metric_epsg, 0) AS epsg, ST_AsBinary(geom) AS geom
        FROM jurisdiction ORDER BY id"""),
            conn,
        )
    )
    # features whose jurisdiction says no metric CRS join the deployment's main one
    known = pd.concat([segs["epsg"], cells["epsg"], juris["epsg"]])
    known = known[known > 0]
    main_epsg = int(known.mode().iloc[0]) if len(known) else 0
    for layer in (segs, cells, juris):
        layer.loc[layer["epsg"] == 0, "epsg"] = main_epsg
    parts = []
    for epsg in sorted(set(segs["epsg"]) | set(cells["epsg"]) | set(juris["epsg"])):
        s, c, j = segs[segs.epsg == epsg], cells[cells.epsg == epsg], juris[juris.epsg == epsg]
        layers = [g for g in (s.geometry, c.geometry, j.geometry) if len(g)]
        bounds = np.array([g.total_bounds for g in layers])
        bbox = (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max())
        centre = ((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2)
        metric = int(epsg) or crsmod.resolve_metric_crs(settings.metric_crs, *centre)
        index = AssignmentIndex.build(
            s[["id", "road_class", "street", "area", "geometry"]],
            c[["id", "geometry"]] if len(c) else None,
            j[["id", "level", "geometry"]] if len(j) else None,
            ruleset=ruleset,
            metric_epsg=metric,
        )
        parts.append(_Part(metric, bbox, index))
    owners = pd.read_sql_query(
        sa.text("""
        SELECT a.id, a.target_type, a.target_id, a.role, a.valid_from, a.valid_to, a.person_id, a.department_id,
               COALESCE(p.name, d.name) AS owner_name
        FROM owner_assignment a LEFT JOIN person p ON p.id = a.person_id LEFT JOIN department d ON d.id = a.department_id
        """),
        conn,
    )
    dept_names = dict(conn.execute(sa.text("SELECT id, name FROM department")).all())
    streets = pd.read_sql_query(sa.text("SELECT id, jurisdiction_id FROM street"), conn)
    zones = sql.jurisdiction_timezones(conn, settings.timezone)
    return Deployment(
        ruleset=ruleset,
        parts=parts,
        owners=OwnerHistory(owners, department_names=dept_names),
        owner_rows=owners,
        topology=ChainTopology(
            segment_street=pd.Series(segs["street_id"].to_numpy(dtype=float), index=segs["id"].to_numpy()),
            street_jurisdiction=pd.Series(
                streets["jurisdiction_id"].to_numpy(dtype=float, na_value=np.nan), index=streets["id"].to_numpy()
            ),
            jurisdiction_parent=pd.Series(juris["parent_id"].to_numpy(dtype=float), index=juris["id"].to_numpy()),
        ),
        cell_jurisdiction=pd.Series(
            pd.to_numeric(cells["jurisdiction_id"]).to_numpy(dtype=float, na_value=np.nan), index=cells["id"].to_numpy()
        ),
        timezone=settings.timezone,
        # only the jurisdictions whose zone differs from the setting: usually none, and routing then
        # takes every local day in one vectorised step
        jurisdiction_timezone={j: tz for j, tz in zones.items() if tz != settings.timezone},
        segment_info=pd.DataFrame(
            {"name": segs["name"].to_numpy(), "street": segs["street"].to_numpy()}, index=segs["id"].to_numpy()
        ),
        names={
            "cell": dict(zip(cells["id"], cells["code"])),
            "jurisdiction": {i: f"{n} ({c})" for i, n, c in zip(juris["id"], juris["name"], juris["code"])},
        },
        data_version=int(version),
        areas=served_areas(conn) or None,
        frontage=load_frontage(conn),
    )


def load_frontage(conn: sa.Connection) -> FrontageUnits | None:
    """The units with a frontage, their agreements and the frontage-duty categories (None when there are
    no such categories or units: the batch then routes by location alone)."""
    duty = frozenset(r[0] for r in conn.execute(sa.text("SELECT code FROM category WHERE frontage_duty")))
    if not duty:
        return None
    units = _gdf(
        pd.read_sql_query(
            sa.text("""
        SELECT id, name, contact_name, person_id, segment_id, ST_AsBinary(frontage) AS geom
        FROM frontage_unit WHERE frontage IS NOT NULL ORDER BY id"""),
            conn,
        )
    )
    if units.empty:
        return None
    agreements = pd.read_sql_query(
        sa.text("SELECT unit_id, id, signed_on, expires_on FROM frontage_agreement ORDER BY unit_id, id"), conn
    )
    return FrontageUnits(units, agreements, duty)


# --- stored reports ------------------------------------------------------------------------
def _text(values) -> pa.Array:
    """Text with missing values (None or NaN) as nulls."""
    return pa.array(
        pd.Series(values, dtype=object).where(lambda v: v.notna(), None), type=pa.string(), from_pandas=True
    )


def stored_selection(
    deployment: Deployment, *, since: dt.date | None = None, only_unassigned: bool = False
) -> tuple[str, dict]:
    """The condition (on ``report r``, psycopg parameters) of the stored reports a run assigns."""
    where = ["r.geom IS NOT NULL"]
    params: dict = {}
    if since is not None:
        where.append("r.reported_at >= %(since)s")
        params["since"] = timeutil.day_start(since, deployment.timezone)
    if only_unassigned:
        where.append("NOT EXISTS (SELECT 1 FROM report_assignment h WHERE h.report_id = r.id)")
    return " AND ".join(where), params


STORED_NAMES = ["report_id", "lon", "lat", "category", "reported_at"]


def read_stored(raw, where: str, params: dict | None = None) -> pd.DataFrame:
    """The reports matching ``where`` read with one COPY (psycopg connection ``raw``): report_id, lon, lat
    (EPSG:4326), category code, reported_at (epoch seconds: its local day depends on where it is routed)."""
    copy_sql = (
        "COPY (SELECT r.id, ST_X(r.geom), ST_Y(r.geom), c.code, EXTRACT(EPOCH FROM r.reported_at)::float8 "
        f"FROM report r LEFT JOIN category c ON c.id = r.category_id WHERE {where}) TO STDOUT (FORMAT csv)"
    )
    buf = io.BytesIO()
    with raw.cursor() as cur:
        with cur.copy(copy_sql, params or None) as copy:
            for chunk in copy:
                buf.write(chunk)
    buf.seek(0)
    if buf.getbuffer().nbytes == 0:
        return pd.DataFrame({n: pd.Series(dtype=t) for n, t in zip(STORED_NAMES, [int, float, float, object, float])})
    return pacsv.read_csv(
        buf,
        read_options=pacsv.ReadOptions(column_names=STORED_NAMES),
        convert_options=pacsv.ConvertOptions(
            column_types={
                "report_id": pa.int64(),
                "lon": pa.float64(),
                "lat": pa.float64(),
                "category": pa.string(),
                "reported_at": pa.float64(),
            }
        ),
    ).to_pandas(date_as_object=False, strings_to_categorical=True)


def write_history(raw, deployment: Deployment, frame: pd.DataFrame) -> tuple[Counter, float]:
    """Route ``frame`` (as :func:`read_stored` gives) and append its history rows with one COPY.

    Returns the rows by rule and the seconds spent routing.  Chunks are pipelined: the server ingests
    chunk k while this process routes chunk k + 1.
    """
    t_assign = 0.0
    by_rule: Counter = Counter()
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY report_assignment ({', '.join(HISTORY_COLUMNS)}) FROM STDIN (FORMAT csv)") as copy,
    ):
        for start in range(0, len(frame), STORED_CHUNK_ROWS):
            t = time.perf_counter()
            table = _history_rows(deployment, frame.iloc[start : start + STORED_CHUNK_ROWS])
            t_assign += time.perf_counter() - t
            by_rule.update(pd.Series(table.column("rule").to_numpy(zero_copy_only=False)).value_counts().to_dict())
            sink = io.BytesIO()
            pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False))
            copy.write(sink.getvalue())
    return by_rule, t_assign


def assign_stored_reports(
    conn: sa.Connection, deployment: Deployment, *, since: dt.date | None = None, only_unassigned: bool = False
) -> dict:
    """(Re)assign stored reports: bulk read, route in process, bulk write; history is kept.

    Each run appends one ``report_assignment`` row per report (one COPY); the
    report's current assignment is its latest row (view ``report_current``).
    Returns counts by rule and timings.  :mod:`gisgrid.routing.distributed` does the same on a
    dask.distributed cluster.
    """
    t0 = time.perf_counter()
    where, params = stored_selection(deployment, since=since, only_unassigned=only_unassigned)
    raw = conn.connection.dbapi_connection
    frame = read_stored(raw, where, params)
    t_read = time.perf_counter()
    if frame.empty:
        return {"reports": 0, "by_rule": {}, "seconds": time.perf_counter() - t0}
    # The history is the record: the current assignment is its latest row (view report_current).
    by_rule, t_assign = write_history(raw, deployment, frame)
    t_end = time.perf_counter()
    return {
        "reports": len(frame),
        "by_rule": dict(by_rule),
        "ruleset_version": deployment.ruleset.version,
        "seconds": t_end - t0,
        "read_s": t_read - t0,
        "assign_s": t_assign,
        "write_s": t_end - t_read - t_assign,
    }


STORED_CHUNK_ROWS = 200_000
HISTORY_COLUMNS = (
    "report_id",
    "ruleset_version",
    "rule",
    "target_type",
    "target_id",
    "segment_id",
    "distance_m",
    "owner_person_id",
    "owner_department_id",
    "owner_name",
    "chain",
    "reason",
)


def _history_rows(deployment: Deployment, frame: pd.DataFrame) -> pa.Table:
    """Route ``frame`` (report_id, lon, lat, category, reported_at epoch seconds) into report_assignment rows.

    Owners are those of the report's local day at the place it is routed to.
    """
    result = deployment.assign_table(
        frame[["report_id", "lon", "lat", "category"]],
        crs="EPSG:4326",
        category="category",
        instants=frame["reported_at"].to_numpy(),
    )
    failed = result["error_code"].notna().to_numpy()
    table = pa.table(
        {
            "report_id": pa.array(frame["report_id"].to_numpy()),
            "ruleset_version": pa.array([deployment.ruleset.version] * len(frame), type=pa.string()),
            "rule": _text(np.where(failed, "error", result["rule"].astype(object).to_numpy())),
            "target_type": _text(result["target_type"].astype(object).to_numpy()),
            "target_id": pa.array(result["target_id"]),
            "segment_id": pa.array(result["segment_id"]),
            "distance_m": pa.array(result["distance_m"].round(2).to_numpy()),
            "owner_person_id": pa.array(result["owner_person_id"]),
            "owner_department_id": pa.array(result["owner_department_id"]),
            "owner_name": _text(result["owner_name"].to_numpy(dtype=object)),
            "chain": _text(result["chain"].to_numpy(dtype=object)),
            "reason": _text(
                np.where(
                    failed,
                    result["error_message"].astype(object).to_numpy(),
                    result["reason"].astype(object).to_numpy(),
                )
            ),
        }
    )
    return table.select(list(HISTORY_COLUMNS))


class _Owners:
    """A deployment's owner rules as the engine calls them: with or without the chain text, and with the
    local day taken from each row's instant at its routed target when ``instants`` are given."""

    def __init__(self, deployment: Deployment, *, with_chain: bool = True, instants=None):
        self.deployment = deployment
        self.with_chain = with_chain
        self.instants = instants

    def owners_for(self, *args, **kwargs) -> pd.DataFrame:
        return self.deployment.owners_for(*args, with_chain=self.with_chain, instants=self.instants, **kwargs)

    def frontage_step(self, result: pd.DataFrame, lon, lat, categories, days) -> pd.DataFrame:
        return self.deployment.frontage_step(result, lon, lat, categories, days, instants=self.instants)


def explain_point(
    deployment: Deployment,
    *,
    lon: float,
    lat: float,
    crs="EPSG:4326",
    category: str | None = None,
    day: str | dt.date | None = None,
) -> dict:
    """Route one point and say why: target, rule, distance, owner and chain, rule-set version.

    The single-request path: no pandas, a few tens of microseconds of routing.
    Bad input comes back as ``{"error": code, "detail": message}`` (codes as in
    :data:`gisgrid.routing.rules.ERROR_CODES`).
    """
    try:
        parsed = crsmod.parse_crs(crs)
    except InputError as exc:
        return {"error": "bad_crs", "detail": str(exc)}
    if isinstance(day, dt.date):
        when = day
    else:
        try:
            when = dt.date.fromisoformat(str(day)[:10]) if day else None  # None: today where the point is
        except ValueError:
            return {"error": "bad_date", "detail": f"date must be YYYY-MM-DD, not {day!r}"}
    try:
        slon, slat = check_point(lon, lat, parsed, areas=deployment.index.areas)
    except PointError as exc:
        return {"error": exc.code, "detail": exc.reason}
    try:
        r = deployment.index.route_point(slon, slat, category or None)
    except InputError as exc:
        return {"error": "unknown_category", "detail": str(exc)}
    if when is None:
        when = timeutil.local_today(deployment.timezones_of([r["target_type"]], [r["target_id"]])[0])
    owner = deployment.owner_of(r["target_type"], r["target_id"], when)
    return {
        "lon": round(slon, 7),
        "lat": round(slat, 7),
        "crs_in": parsed.name,
        **r,
        "target_name": deployment.target_name(r["target_type"], r["target_id"]),
        "owner": owner[0] if owner else None,
        "owner_person_id": owner[1] if owner else None,
        "owner_department_id": owner[2] if owner else None,
        "chain": (owner[0] if owner else None)
        if r["target_type"] == "department"
        else deployment.chain_of(r["segment_id"], when),
        "date": when.isoformat(),
    }


# --- the frontage-duty step (门前三包) -----------------------------------------------------------
def frontage_units_at(conn: sa.Connection, lon: float, lat: float, day: dt.date) -> list[dict]:
    """The frontage units whose frontage holds the point (EPSG:4326), each with the agreement that matters on
    ``day``: the one holding then, else the latest."""
    rows = conn.execute(
        sa.text("""
        SELECT u.id, u.name, u.contact_name, u.person_id, u.segment_id, a.signed_on, a.expires_on
        FROM (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS pt) p
        JOIN frontage_unit u ON u.frontage && p.pt AND ST_Intersects(u.frontage, p.pt)
        LEFT JOIN LATERAL (
            SELECT fa.signed_on, fa.expires_on FROM frontage_agreement fa WHERE fa.unit_id = u.id
            ORDER BY (fa.signed_on <= :day AND :day < fa.expires_on) DESC, fa.expires_on DESC, fa.id DESC LIMIT 1
        ) a ON true
        ORDER BY u.id"""),
        {"lon": float(lon), "lat": float(lat), "day": day},
    ).all()
    return [dict(r._mapping) for r in rows]


def route_frontage(conn: sa.Connection, route: dict, *, category: str | None) -> dict:
    """``route`` (:func:`explain_point`) after the frontage-duty step, :func:`gisgrid.routing.frontage.route_to_unit`.

    Only a category marked ``frontage_duty`` looks for units; the local day
    of the routing (``route["date"]``) decides whether an agreement holds.
    """
    from gisgrid.routing.frontage import route_to_unit

    duty = bool(
        category
        and conn.execute(sa.text("SELECT frontage_duty FROM category WHERE code = :c"), {"c": category}).scalar()
    )
    if not duty or route.get("lon") is None:
        return {**route, "frontage_unit_id": None}
    day = dt.date.fromisoformat(route["date"]) if route.get("date") else dt.date.today()
    units = frontage_units_at(conn, route["lon"], route["lat"], day)
    return route_to_unit(route, units, frontage_duty=True, day=day)
