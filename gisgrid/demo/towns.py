"""The sample towns and what is made up about them: the towns, departments, categories, names and phones.

The towns' streets and address points are read from ``gisgrid/data/`` (© OpenStreetMap contributors, ODbL);
a town's boundary and its four communities are drawn around its streets (:func:`_town_polygons`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import box

from gisgrid import crs
from gisgrid.config import DATA_DIR, DEFAULT_ATTRIBUTION

LOGGER = logging.getLogger(__name__)


ATTRIBUTION = DEFAULT_ATTRIBUTION
SEED = 20261123


@dataclass(frozen=True)
class DemoTown:
    key: str
    county_code: str
    county_name: str
    town_name: str
    community_names: tuple[str, str, str, str]
    #: IANA time zone when not the deployment's ``timezone`` setting (stored on the county, inherited below)
    timezone: str | None = None

    @property
    def town_code(self) -> str:
        return self.county_code + "001"


TOWNS = (
    DemoTown(
        "shatin", "810006", "沙田区（演示）", "沙田市中心（演示）", ("禾輋社区", "瀝源社区", "沙田围社区", "大围社区")
    ),
    DemoTown(
        "beijing_haidian",
        "110108",
        "海淀区",
        "学院路街道（演示）",
        ("清华东路社区", "学清路社区", "双清路社区", "志新社区"),
    ),
    DemoTown(
        "shenzhen_longgang",
        "440307",
        "龙岗区",
        "龙城街道（演示）",
        ("愉园社区", "黄阁坑社区", "嶂背社区", "回龙埔社区"),
    ),
    DemoTown(
        "helsinki",
        "990091",
        "Helsinki (demo)",
        "Kluuvi–Kamppi (demo)",
        ("Kluuvi", "Kamppi", "Kaartinkaupunki", "Kruununhaka"),
        "Europe/Helsinki",
    ),
)

DEPARTMENTS = (
    ("sanitation", "环境卫生管理所", "0755-00000001"),
    ("enforcement", "城市管理综合执法局", "0755-00000002"),
    ("traffic", "交警大队", "0755-00000003"),
    ("environment", "生态环境局", "0755-00000004"),
    ("housing", "住房和城乡建设局", "0755-00000005"),
    ("water", "水务局", "0755-00000006"),
    ("road_admin", "公路管理局", "0755-00000007"),
    ("lighting", "路灯管理所", "0755-00000008"),
    ("utility", "市政公用事业服务中心", "0755-00000009"),
)

# Categories from DOMAIN.md (CJ/T 214 style class + subclass codes; demo coding).
# routing: "location" (先属地), "department" (先属主), or by road class.
CATEGORIES = (
    # code, name, name_en, kind, department, deadline h, working time, routing
    ("0101", "暴露垃圾", "Exposed or piled garbage", "event", "sanitation", 4, False, {"mode": "location"}),
    ("0102", "道路不洁", "Road surface not clean", "event", "sanitation", 2, False, {"mode": "department"}),
    (
        "0501",
        "占道经营、出店经营",
        "Street-occupying vending",
        "event",
        "enforcement",
        4,
        False,
        {
            "mode": "by_road_class",
            "road_classes": {"motorway": "road_admin", "trunk": "road_admin", "primary": "enforcement"},
        },
    ),
    ("0502", "乱停乱放", "Illegal parking", "event", "traffic", 2, False, {"mode": "department"}),
    ("0201", "乱张贴、乱涂写", "Fly-posting, graffiti", "event", None, 8, True, {"mode": "location"}),
    ("0103", "排烟排污", "Smoke or sewage discharge", "event", "environment", 8, True, {"mode": "department"}),
    (
        "0401",
        "乱搭乱建（制止）",
        "Illegal structure: stop works",
        "event",
        "enforcement",
        4,
        True,
        {"mode": "department"},
    ),
    (
        "0402",
        "乱搭乱建（拆除）",
        "Illegal structure: demolish",
        "event",
        "enforcement",
        160,
        True,
        {"mode": "department"},
    ),
    ("0403", "渣土撒漏", "Construction waste spill", "event", "housing", 4, False, {"mode": "department"}),
    ("0601", "积水", "Waterlogging", "event", "water", 4, False, {"mode": "department"}),
    ("1101", "井盖破损", "Damaged manhole cover", "facility", "utility", 8, True, {"mode": "department"}),
    ("1201", "路灯不亮", "Broken street light", "facility", "lighting", 16, True, {"mode": "department"}),
)
#: Frontage-duty categories (门前三包): a report of one of these in a unit's frontage goes to the unit.
FRONTAGE_CATEGORIES = (
    ("0503", "出店经营", "Goods outside the shop (frontage duty)", "event", "enforcement", 4, False),
    ("0104", "门前乱堆垃圾", "Garbage piled in front of a unit", "event", "sanitation", 4, False),
    ("0105", "门前不洁", "Dirty pavement in front of a unit", "event", "sanitation", 2, False),
)
CATEGORY_WEIGHTS = np.array([18, 8, 16, 14, 10, 4, 3, 1, 4, 3, 8, 11], dtype=float)

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌")
FI_FIRST = ["Aino", "Eero", "Helmi", "Juha", "Kaisa", "Lauri", "Mikko", "Noora", "Oskari", "Pia", "Sanna", "Timo"]
FI_LAST = ["Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Hämäläinen", "Laine", "Koskinen", "Heikkinen"]
DESCRIPTIONS = {
    "0503": "店外摆放货物占用人行道",
    "0104": "店门口堆放纸箱垃圾",
    "0105": "门前人行道油污未清理",
    "0101": "路边有堆放的生活垃圾",
    "0102": "路面有泥沙和落叶",
    "0501": "商户出店经营，占用人行道",
    "0502": "机动车停在人行道上",
    "0201": "电线杆上有小广告",
    "0103": "餐馆油烟直排",
    "0401": "正在搭建违章雨棚",
    "0402": "违章建筑需拆除",
    "0403": "渣土车沿路撒漏",
    "0601": "路口积水",
    "1101": "井盖破损下沉",
    "1201": "路灯夜间不亮",
}


def _names(rng: np.random.Generator, n: int, latin: bool) -> list[str]:
    if latin:
        return [f"{rng.choice(FI_FIRST)} {rng.choice(FI_LAST)}" for _ in range(n)]
    return [str(rng.choice(SURNAMES)) + "".join(rng.choice(GIVEN, size=rng.integers(1, 3))) for _ in range(n)]


def _phone(rng: np.random.Generator) -> str:
    return "13" + "".join(str(d) for d in rng.integers(0, 10, size=9))


def read_streets(town: DemoTown) -> gpd.GeoDataFrame:
    """The town's OSM street centerlines (EPSG:4326) with ``name``, ``road_class`` and aliases."""
    gdf = gpd.read_file(DATA_DIR / f"{town.key}_streets.geojson").to_crs(crs.STORAGE_SRID)
    gdf = gdf.rename(columns={"highway": "road_class"})
    aliases = []
    for _, row in gdf.iterrows():
        al = [v for v in (row.get("name_en"), row.get("name_osm")) if isinstance(v, str) and v and v != row["name"]]
        aliases.append(al)
    gdf["aliases"] = aliases
    return gdf[["osm_id", "name", "road_class", "aliases", "geometry"]]


def read_addresses(town: DemoTown) -> pd.DataFrame:
    return pd.read_csv(DATA_DIR / f"{town.key}_addresses_dev.csv", dtype=str)


def _town_polygons(streets: gpd.GeoDataFrame, epsg: int):
    """Town = hull of the streets plus 60 m; communities = its four quadrants (they tile the town)."""
    metric = streets.to_crs(epsg)
    town = shapely.convex_hull(shapely.union_all(metric.geometry.values)).buffer(60.0)
    c = town.centroid
    xmin, ymin, xmax, ymax = town.bounds
    quads = [box(xmin, c.y, c.x, ymax), box(c.x, c.y, xmax, ymax), box(xmin, ymin, c.x, c.y), box(c.x, ymin, xmax, c.y)]
    parts = [town.intersection(q) for q in quads]
    t = crs.transformer(epsg, crs.STORAGE_SRID)

    def to_storage(geom):
        return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))

    return to_storage(town), [to_storage(p) for p in parts]
