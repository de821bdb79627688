"""Settings: one source of configuration for the CLI, the web app and tests.

Values come from defaults below, then an instance file
(``instance/gisgrid.cfg``, Python syntax, or the path in ``GISGRID_CONFIG``),
then environment variables ``GISGRID_<NAME>``.  Nothing here runs at import
time beyond defining the defaults.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

LOGGER = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
#: The source checkout when running from one (tests, notebooks, bench), else the install prefix's parent.
PROJECT_ROOT = PACKAGE_DIR.parent
#: Sample towns (OpenStreetMap extracts) shipped inside the package, so ``gisgrid demo load`` works when installed.
DATA_DIR = PACKAGE_DIR / "data"
TEMPLATE_DIR = PACKAGE_DIR / "web" / "templates"
#: Static files the web app serves; Leaflet, its plugins and fonts are vendored under ``vendor/``.
STATIC_DIR = PACKAGE_DIR / "web" / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
#: Message catalogs (gettext), one folder per language.
TRANSLATIONS_DIR = PACKAGE_DIR / "translations"
#: Credit of the sample towns' data (OpenStreetMap streets and address points): the default of
#: ``Settings.attribution``, shown on every map.
DEFAULT_ATTRIBUTION = "© OpenStreetMap contributors (ODbL 1.0)"
MIGRATIONS_DIR = PACKAGE_DIR / "db" / "migrations"


def _is_checkout() -> bool:
    """True when gisgrid runs from its source tree (not from site-packages)."""
    return (PROJECT_ROOT / "setup.cfg").is_file() and (PROJECT_ROOT / "gisgrid").is_dir()


def default_var_dir() -> str:
    """Where the data folder goes unless ``GISGRID_VAR_DIR`` says otherwise.

    ``var/`` beside the source in a checkout; in an installed copy, never inside
    site-packages but ``$XDG_DATA_HOME/gisgrid`` (``~/.local/share/gisgrid``).
    """
    if _is_checkout():
        return str(PROJECT_ROOT / "var")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "gisgrid")


#: Road-class frontage settings: half the carriageway width plus the depth of
#: frontage (门前三包 strip) that belongs to the segment, in metres.
DEFAULT_ROAD_WIDTHS_M = {
    "motorway": 16.0,
    "trunk": 14.0,
    "primary": 12.0,
    "secondary": 10.0,
    "tertiary": 8.0,
    "unclassified": 6.0,
    "residential": 6.0,
    "service": 4.0,
    "pedestrian": 4.0,
    "footway": 2.0,
    "steps": 2.0,
    "living_street": 4.0,
}
DEFAULT_FRONTAGE_DEPTH_M = 25.0
#: The longest written address the geocoder reads, characters: a longer one fails its row with the reason
#: (a 120,000-character "address" is a pasted document; reading it would cost minutes and gigabytes).
MAX_ADDRESS_CHARS = 300
#: The longest text any cell of a batch input (import, assign, geocode, the web upload) may hold, characters:
#: a row with a longer cell is refused and reported with its number.  Database columns of a fixed width
#: (an id of 64, a phone number of 40) refuse longer values the same way.
MAX_TEXT_CHARS = 10_000


@dataclass(frozen=True)
class TextLimits:
    """The longest text a batch accepts, characters: any cell (``text``) and a written address (``address``)."""

    text: int = MAX_TEXT_CHARS
    address: int = MAX_ADDRESS_CHARS


#: The secret key of a fresh checkout: known to everyone, so refused outside the demo and tests.
DEFAULT_SECRET_KEY = "dev-only-change-me"
#: Road classes from the highest down (OSM ``highway`` values; ``*_link`` ranks as its road): which street
#: of a written crossing answers when the deployment's ``address_intersection_rule`` is ``road_class``.
ROAD_CLASS_ORDER = (
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "unclassified",
    "residential",
    "living_street",
    "service",
    "pedestrian",
    "footway",
    "steps",
)
#: A point located from a written address goes to the street it names when a centerline of that street lies
#: within this many metres.  Door plates of large buildings stand far back from their street (Helsinki's
#: Stockmann, Mannerheimintie 14-20, 100 m); a street of the same name in another town lies further than a
#: block away.  bench/geocode.py measures owner agreement against it (Helsinki, leave-one-out: 87% at 60 m,
#: 92% at 150 m).
DEFAULT_ADDRESS_STREET_TOLERANCE_M = 150.0


@dataclass
class Settings:
    """Deployment settings.  Field names map to ``GISGRID_<UPPER>`` env vars."""

    database_url: str = ""  # empty: the managed local cluster
    var_dir: str = field(default_factory=default_var_dir)
    pg_port: int = 54329
    pg_database: str = "gisgrid"
    pg_durable: bool = True  # False only for throw-away test clusters
    metric_crs: str = "auto"  # "auto" or an EPSG code such as 4547
    segment_max_length_m: float = 500.0
    frontage_depth_m: float = DEFAULT_FRONTAGE_DEPTH_M
    road_half_widths_m: dict = field(default_factory=lambda: dict(DEFAULT_ROAD_WIDTHS_M))
    nearest_tolerance_m: float = 30.0
    # a report located from a written address goes to the street it names within this distance (routing rule
    # address_street); a written crossing goes to the street written first ("first_written") or to the one of
    # the higher road class ("road_class")
    address_street_tolerance_m: float = DEFAULT_ADDRESS_STREET_TOLERANCE_M
    address_intersection_rule: str = "first_written"
    audit_sliver_area_m2: float = 50.0  # cells and gap/overlap pieces smaller than this are slivers
    audit_sliver_thinness: float = 0.1  # ... or thinner than this (Polsby-Popper 4πA/P²)
    audit_max_units_per_owner: int = 20  # a person owning more cells and segments is listed
    audit_expiry_days: int = 30  # assignments ending within this many days are listed
    default_locale: str = "zh_CN"
    #: IANA time zone of the local day (owner on a day, date filters, deadlines); a jurisdiction may override it
    #: (``jurisdiction.timezone``, inherited by its children).
    timezone: str = "Asia/Shanghai"
    #: Working periods of a working day, local time: deadlines of categories counted in working time run only here.
    working_hours: str = "08:30-12:00,13:30-18:00"
    #: Which days are working days: "china" (the official calendar with its 调休 make-up days) or "weekdays".
    work_calendar: str = "china"
    attribution: str = DEFAULT_ATTRIBUTION  # credit of the deployment's map data, on every map
    secret_key: str = DEFAULT_SECRET_KEY  # refused outside the demo and tests: set GISGRID_SECRET_KEY
    demo: bool = False  # the sample deployment (`make demo`): a default secret key is replaced, not refused
    password_min_length: int = 10
    login_max_failures: int = 10  # failures in a row that lock an account ...
    login_lock_minutes: float = 15.0  # ... for this long
    login_rate_limit: str = "10 per minute;100 per hour"  # login attempts per client address (Flask-Limiter)
    api_rate_limit: str = "120 per minute;5000 per hour"  # requests per API key (machine clients)
    session_lifetime_minutes: int = 480  # a session ends this long after sign-in
    max_request_bytes: int = 25 * 1024 * 1024  # any request body (uploads); larger is a 413
    max_json_bytes: int = 1024 * 1024  # a JSON body (API calls, page writes)
    max_json_depth: int = 64  # deeper JSON is refused as unreadable
    max_text_chars: int = MAX_TEXT_CHARS  # a longer cell in a batch input refuses its row (see TextLimits)
    max_address_chars: int = MAX_ADDRESS_CHARS  # a longer written address fails its row in the geocoder
    host: str = "127.0.0.1"
    port: int = 5000
    # Background jobs (gisgrid.jobs): worker threads `gisgrid serve` starts (0: none, run `gisgrid worker`),
    # and the longest wait (seconds) of an idle worker between looks at the queue (NOTIFY wakes it sooner).
    job_workers: int = 1
    job_poll_s: float = 5.0
    # Geocoding uploads up to this many bytes are geocoded inside the request, so the clerk sees the
    # result at once (128 KiB is about 6,000 addresses, about 3 s); larger ones become a background
    # job with a progress page.  0 sends every upload to the queue.
    geocode_inline_max_bytes: int = 128 * 1024
    chromium_path: str = "/usr/bin/chromium"  # headless Chromium for the PNG export of the manager map
    # Cases (gisgrid.cases): open cases of the same category this near and this recent are offered as
    # duplicates at intake; an overdue case climbs the chain 段长 → 二级街长 → 一级街长 → 总街长 once the time
    # since it was reported is each of these multiples of the time it was given.
    duplicate_radius_m: float = 50.0
    duplicate_days: float = 7.0
    escalation_multiples: str = "1,2,3"
    case_tick_s: float = 300.0  # how often the worker runs the escalation and deadline-warning check
    photo_max_bytes: int = 10 * 1024 * 1024  # one photo (JPEG, PNG or WebP); larger is refused
    photo_max_pixels: int = 40_000_000  # a decompression bomb is refused, not decoded
    photo_thumb_px: int = 320  # the longer side of a thumbnail
    # Frontage duty (门前三包, gisgrid.frontage): a unit given as a point answers for this width of frontage; a
    # unit further than this from every centerline is not placed on a segment; the audit lists agreements
    # ending within frontage_expiry_days and unanswered frontage stretches of shopping streets at least this long.
    frontage_point_width_m: float = 12.0
    frontage_max_distance_m: float = 60.0
    frontage_expiry_days: int = 30
    frontage_gap_min_m: float = 30.0
    #: The 红黑榜 rules (JSON text; gisgrid.frontage.compliance.DEFAULT_RULES when empty).
    frontage_redblack_rules: str = ""
    # Signboards (街长公示牌) and the public report page: the address residents reach (printed in the QR code)
    # and the supervision hotline printed on each board.
    public_base_url: str = "http://127.0.0.1:5000"
    supervision_hotline: str = "12345"
    # Abuse limits of the public report page (Flask-Limiter rates): per device (a cookie) and per client address;
    # and the largest public report (form and photo together).
    public_rate_per_device: str = "5 per hour;20 per day"
    public_rate_per_address: str = "30 per hour;200 per day"
    public_max_bytes: int = 6 * 1024 * 1024
    # Operations (docs/operations.md): backups (`gisgrid db backup`; `gisgrid serve` writes one every day at
    # backup_at, local time, and keeps the newest backup_keep; empty backup_at: none, use the systemd timer),
    # the web server's threads and the database connection pool of each process, who may read /metrics
    # (from 127.0.0.1 / ::1 always; elsewhere only with `Authorization: Bearer <metrics_token>`), JSON-lines logs.
    backup_dir: str = ""  # empty: <var_dir>/backups
    backup_keep: int = 7
    backup_at: str = "02:30"
    serve_threads: int = 8
    db_pool_size: int = 10
    db_max_overflow: int = 10
    metrics_token: str = ""
    log_json: bool = False
    # the address of a reverse proxy (nginx on this machine: 127.0.0.1) whose X-Forwarded-For/-Proto waitress
    # believes: the client's address for login limits and logs, https for Secure cookies; empty: none
    trusted_proxy: str = ""

    @property
    def text_limits(self) -> TextLimits:
        """The text limits of every batch entry point (import, assign, geocode, the web upload)."""
        return TextLimits(text=int(self.max_text_chars), address=int(self.max_address_chars))

    @property
    def managed(self) -> bool:
        """True when gisgrid runs its own PostgreSQL cluster under ``var_dir``."""
        return not self.database_url


def _coerce(value: str, like):
    if isinstance(like, bool):
        return value.lower() in {"1", "true", "yes", "on"}
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    if isinstance(like, dict):
        import json

        return json.loads(value)
    return value


def load_settings(*, env: dict | None = None, instance_file: str | os.PathLike | None = None, **overrides) -> Settings:
    """Read settings from defaults, instance file, environment and overrides (in that order)."""
    env = os.environ if env is None else env
    settings = Settings()
    if instance_file or env.get("GISGRID_CONFIG"):
        path = Path(instance_file or env["GISGRID_CONFIG"])
    elif _is_checkout():
        path = PROJECT_ROOT / "instance" / "gisgrid.cfg"
    else:
        path = Path(env.get("GISGRID_VAR_DIR") or settings.var_dir) / "gisgrid.cfg"
    if path.is_file():
        namespace: dict = {}
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)  # noqa: S102 - trusted admin file
        for f in fields(Settings):
            key = f.name.upper()
            if key in namespace:
                setattr(settings, f.name, namespace[key])
    for f in fields(Settings):
        key = "GISGRID_" + f.name.upper()
        if key in env and env[key] != "":
            setattr(settings, f.name, _coerce(env[key], getattr(settings, f.name)))
    for name, value in overrides.items():
        setattr(settings, name, value)
    return settings
