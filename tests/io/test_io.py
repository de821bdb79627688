"""gisgrid.io: reading with row-level validation, and writing every supported format.

Pure file tests on the OpenStreetMap samples in ``data/`` and small files made
in ``tmp_path``; no database.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Transformer

from gisgrid.config import DATA_DIR
from gisgrid.crs import gcj02_to_wgs84, wgs84_to_gcj02
from gisgrid.errors import CRSError, FileFormatError, InputError
from gisgrid.io import ReadResult, neutralise_formula, read_layer, to_geojson_bytes, write_layer

DATA = DATA_DIR
BEIJING_STREETS = DATA / "beijing_haidian_streets.geojson"
HELSINKI_ADDRESSES = DATA / "helsinki_addresses_dev.csv"
SHENZHEN_ADDRESSES = DATA / "shenzhen_longgang_addresses_dev.csv"
HAIDIAN_EXTENT = (116.0, 39.6, 116.8, 40.3)
HELSINKI_EXTENT = (24.7, 60.0, 25.3, 60.4)
INJECTION = "=cmd|' /C calc'!A0"


def assert_consistent(result: ReadResult) -> None:
    """The invariant every caller relies on: each row read is either kept or reported."""
    assert len(result.frame) + len(result.rejected) == result.total
    assert result.frame.crs.to_epsg() == 4326
    kept, rejected = set(result.frame["row"]), {p.row for p in result.rejected}
    assert len(kept) == len(result.frame) and len(rejected) == len(result.rejected)  # one entry per row
    assert not kept & rejected and len(kept | rejected) == result.total


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def text_attributes(frame: pd.DataFrame) -> pd.DataFrame:
    """Attributes as text (None for missing), the form every format can round-trip."""
    attrs = pd.DataFrame(frame.drop(columns=[c for c in ("geometry", "row") if c in frame.columns]))
    return attrs.astype(object).map(lambda v: None if pd.isna(v) else str(v)).reset_index(drop=True)


def beijing_streets() -> gpd.GeoDataFrame:
    return read_layer(BEIJING_STREETS).frame.drop(columns="row")


def helsinki_addresses() -> gpd.GeoDataFrame:
    return read_layer(HELSINKI_ADDRESSES, crs="EPSG:4326").frame.drop(columns="row")


# --- reading real data ---------------------------------------------------------------
def test_geojson_streets_read_with_feature_numbers_and_exact_geometry():
    raw = json.loads(BEIJING_STREETS.read_text(encoding="utf-8"))
    result = read_layer(BEIJING_STREETS, expected_geom="line")

    assert_consistent(result)
    assert result.total == len(raw["features"]) and not result.rejected and not result.repaired
    assert list(result.frame["row"]) == list(range(1, len(raw["features"]) + 1))
    first = raw["features"][0]
    assert result.frame.loc[0, "name"] == first["properties"]["name"] == "学清路"
    assert result.frame.geom_type.unique().tolist() == ["MultiLineString"]  # promoted for a line layer
    expected = shapely.MultiLineString([first["geometry"]["coordinates"]])
    assert shapely.equals_exact(result.frame.geometry.iloc[0], expected, tolerance=1e-12)


def test_address_csv_points_from_lon_lat_columns():
    result = read_layer(HELSINKI_ADDRESSES, crs="EPSG:4326", expected_geom="point")
    raw = pd.read_csv(HELSINKI_ADDRESSES, dtype=str)

    assert_consistent(result)
    assert result.total == len(raw) and len(result.frame) == len(raw)
    np.testing.assert_allclose(result.frame.geometry.x, raw["lon"].astype(float), atol=1e-12)
    np.testing.assert_allclose(result.frame.geometry.y, raw["lat"].astype(float), atol=1e-12)
    assert "lon" not in result.frame.columns  # consumed by the geometry
    assert result.frame["postcode"].iloc[0] == "00100"  # read as text: leading zero kept
    assert f"read {len(raw)} rows" in result.summary() and "0 rejected" in result.summary()


def test_projected_csv_converted_to_lonlat(tmp_path):
    wgs = read_layer(SHENZHEN_ADDRESSES, crs="EPSG:4326").frame
    to_gk = Transformer.from_crs(4326, 4547, always_xy=True)  # CGCS2000 3-degree GK CM 114E
    x, y = to_gk.transform(wgs.geometry.x.to_numpy(), wgs.geometry.y.to_numpy())
    table = pd.DataFrame({"name": wgs["street"], "x": x, "y": y})
    path = tmp_path / "gk.csv"
    table.to_csv(path, index=False)

    result = read_layer(path, crs="EPSG:4547")

    assert_consistent(result)
    np.testing.assert_allclose(result.frame.geometry.x, wgs.geometry.x, atol=1e-7)
    np.testing.assert_allclose(result.frame.geometry.y, wgs.geometry.y, atol=1e-7)


# --- round trips ---------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".csv", ".xlsx", ".zip", ".shp"])
def test_streets_round_trip(tmp_path, suffix):
    frame = beijing_streets()
    path = write_layer(frame, tmp_path / f"streets{suffix}")
    back = read_layer(path, crs="EPSG:4326" if suffix in {".csv", ".xlsx"} else None)

    assert_consistent(back)
    assert not back.rejected and not back.repaired
    assert list(back.frame["row"]) == list(range(1, len(frame) + 1))
    assert shapely.equals_exact(back.frame.geometry.values, frame.geometry.values, tolerance=1e-7).all()
    pd.testing.assert_frame_equal(text_attributes(back.frame), text_attributes(frame))
    if suffix in {".geojson", ".gpkg", ".zip", ".shp"}:
        assert pd.api.types.is_integer_dtype(back.frame["osm_id"])


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".csv", ".xlsx"])
def test_address_points_round_trip(tmp_path, suffix):
    frame = helsinki_addresses()
    path = write_layer(frame, tmp_path / f"addresses{suffix}")
    back = read_layer(path, crs="EPSG:4326" if suffix in {".csv", ".xlsx"} else None, expected_geom="point")

    assert_consistent(back)
    assert len(back.frame) == len(frame)
    assert shapely.equals_exact(back.frame.geometry.values, frame.geometry.values, tolerance=1e-7).all()
    pd.testing.assert_frame_equal(text_attributes(back.frame), text_attributes(frame))


def test_csv_export_has_bom_wkt_and_lon_lat_for_points(tmp_path):
    path = write_layer(helsinki_addresses(), tmp_path / "a.csv")
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    assert table.columns[-3:].tolist() == ["lon", "lat", "wkt"]
    assert table.loc[0, "wkt"] == f"POINT ({table.loc[0, 'lon']} {table.loc[0, 'lat']})"


def test_xlsx_export_header_bold_and_frozen(tmp_path):
    path = write_layer(beijing_streets(), tmp_path / "streets.xlsx", layer="街道")
    sheet = openpyxl.load_workbook(path)["街道"]
    assert sheet.freeze_panes == "A2"
    assert sheet["A1"].font.b and sheet["A1"].value == "osm_id"


def test_gpkg_keeps_other_layers_and_its_crs(tmp_path):
    path = tmp_path / "town.gpkg"
    streets = beijing_streets()
    write_layer(streets, path, layer="streets")
    write_layer(streets.to_crs(4547), path, layer="streets_gk")

    with pytest.raises(InputError, match="streets_gk"):
        read_layer(path)  # two layers: the user must choose
    back = read_layer(path, layer="streets_gk")
    assert back.crs == "EPSG:4547"
    assert shapely.equals_exact(back.frame.geometry.values, streets.geometry.values, tolerance=1e-7).all()


def test_zip_with_shapefiles_in_a_folder(tmp_path):
    streets = beijing_streets()
    write_layer(streets.head(4), tmp_path / "main.shp")
    write_layer(streets.tail(2), tmp_path / "minor.shp")
    archive_path = tmp_path / "export.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        for part in tmp_path.glob("m*.*"):
            archive.write(part, f"海淀/{part.name}")  # zipped from Windows Explorer: inside a folder

    with pytest.raises(InputError, match="main, minor|minor, main"):
        read_layer(archive_path)
    result = read_layer(archive_path, layer="minor")
    assert result.frame["name"].tolist() == streets.tail(2)["name"].tolist()


# --- GeoJSON output rules ---------------------------------------------------------------
def _rings(geometry: dict) -> list[tuple[list, bool]]:
    """(ring coordinates, is exterior) for every ring of a GeoJSON (Multi)Polygon."""
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return [(ring, i == 0) for polygon in polygons for i, ring in enumerate(polygon)]


@pytest.fixture
def clockwise_polygons() -> gpd.GeoDataFrame:
    """Polygons with clockwise exteriors and counter-clockwise holes, in Web Mercator."""
    outer = [(0, 0), (0, 500.123456789), (500.987654321, 500), (500, 0), (0, 0)]  # clockwise
    hole = [(100, 100), (200, 100), (200, 200), (100, 200), (100, 100)]  # counter-clockwise
    polygon = shapely.Polygon(outer, [hole])
    assert not polygon.exterior.is_ccw
    base = shapely.affinity.translate(polygon, 12_950_000, 4_860_000)  # Beijing, metres
    multi = shapely.MultiPolygon([base, shapely.affinity.translate(polygon, 12_951_000, 4_860_000)])
    return gpd.GeoDataFrame(
        {"name": ["街区一", "街区二"], "since": [dt.date(2024, 1, 1), None]}, geometry=[base, multi], crs=3857
    )


@pytest.mark.parametrize("how", ["file", "bytes"])
def test_geojson_is_rfc7946(tmp_path, clockwise_polygons, how):
    if how == "file":
        raw = write_layer(clockwise_polygons, tmp_path / "blocks.geojson").read_text(encoding="utf-8")
    else:
        raw = to_geojson_bytes(clockwise_polygons).decode("utf-8")
    document = json.loads(raw)

    assert "crs" not in document
    assert [f["properties"]["name"] for f in document["features"]] == ["街区一", "街区二"]
    assert document["features"][0]["properties"]["since"] == "2024-01-01"
    rings = [r for f in document["features"] for r in _rings(f["geometry"])]
    assert len(rings) == 6
    for ring, exterior in rings:
        assert shapely.LinearRing(ring).is_ccw == exterior  # exteriors CCW, holes CW
        for lon, lat in ring:
            assert 116.3 < lon < 116.4 and 39.9 < lat < 40.0  # lon/lat, not metres or lat/lon
    decimals = [len(d) for d in re.findall(r"-?\d+\.(\d+)", json.dumps([f["geometry"] for f in document["features"]]))]
    assert decimals and max(decimals) <= 7
    expected = clockwise_polygons.to_crs(4326).geometry.iloc[0]
    written = shapely.geometry.shape(document["features"][0]["geometry"])
    # a layer mixing Polygon and MultiPolygon is written all MultiPolygon: same shape, one type
    assert {f["geometry"]["type"] for f in document["features"]} == {"MultiPolygon"}
    assert shapely.equals_exact(shapely.get_parts(written)[0].normalize(), expected.normalize(), tolerance=1e-7)


def test_geojson_for_other_systems_has_ids_one_type_and_no_float_noise(tmp_path):
    """Features carry a top-level id, GDAL sees one geometry type, coordinates print without noise."""
    frame = gpd.GeoDataFrame(
        {"id": [7, 8], "name": ["甲", "乙"]},
        geometry=[
            shapely.box(116.3, 40.0, 116.301, 40.006297000000004),
            shapely.MultiPolygon([shapely.box(116.31, 40.0, 116.311, 40.001)]),
        ],
        crs=4326,
    )
    path = write_layer(frame, tmp_path / "areas.geojson")
    raw = path.read_text(encoding="utf-8")
    document = json.loads(raw)
    assert [f["id"] for f in document["features"]] == [7, 8]
    assert "40.006297000000004" not in raw and "40.006297" in raw
    assert pyogrio.read_info(path)["geometry_type"] == "MultiPolygon"
    gpkg = write_layer(frame, tmp_path / "areas.gpkg")
    assert pyogrio.read_info(gpkg)["geometry_type"] == "MultiPolygon"


def test_geojson_precision_parameter(tmp_path):
    data = json.loads(to_geojson_bytes(beijing_streets(), precision=3))
    decimals = [len(d) for d in re.findall(r"\.(\d+)", json.dumps(data["features"][0]["geometry"]))]
    assert max(decimals) <= 3


def test_write_without_crs_is_refused(tmp_path):
    frame = beijing_streets().set_crs(None, allow_override=True)
    with pytest.raises(CRSError):
        write_layer(frame, tmp_path / "x.geojson")
    with pytest.raises(CRSError):
        to_geojson_bytes(frame)


def test_write_unknown_extension_and_table_without_geometry(tmp_path):
    with pytest.raises(FileFormatError, match=r"\.gpkg"):
        write_layer(beijing_streets(), tmp_path / "x.kml")
    plain = pd.DataFrame({"owner": ["张三", "=1+1"], "since": pd.to_datetime(["2024-05-01", None])})
    write_layer(plain, tmp_path / "owners.csv")
    text = (tmp_path / "owners.csv").read_text(encoding="utf-8-sig")
    assert text.splitlines() == ["owner,since", "张三,2024-05-01T00:00:00", "'=1+1,"]
    with pytest.raises(InputError, match="no geometry"):
        write_layer(plain, tmp_path / "owners.geojson")


def test_datetimes_written_as_iso_text(tmp_path):
    frame = beijing_streets().head(2)
    frame["surveyed"] = pd.to_datetime(["2024-05-01 08:30", "2024-06-02 17:00"]).tz_localize("Asia/Shanghai")
    frame["since"] = [dt.date(2023, 1, 1), dt.date(2023, 2, 1)]
    csv_table = pd.read_csv(write_layer(frame, tmp_path / "s.csv"), dtype=str, encoding="utf-8-sig")
    assert csv_table["surveyed"].tolist() == ["2024-05-01T08:30:00+08:00", "2024-06-02T17:00:00+08:00"]
    assert csv_table["since"].tolist() == ["2023-01-01", "2023-02-01"]
    sheet = openpyxl.load_workbook(write_layer(frame, tmp_path / "s.xlsx")).active
    header = [c.value for c in sheet[1]]
    assert sheet.cell(2, header.index("surveyed") + 1).value == "2024-05-01T08:30:00+08:00"
    assert sheet.cell(3, header.index("since") + 1).value == "2023-02-01"
    for suffix in (".gpkg", ".geojson"):
        back = read_layer(write_layer(frame, tmp_path / f"s{suffix}")).frame
        assert str(back["since"].iloc[0]).startswith("2023-01-01")
        assert back["surveyed"].tolist() == frame["surveyed"].tolist()  # same instants


# --- whole-file errors ---------------------------------------------------------------
def test_missing_file():
    with pytest.raises(FileFormatError, match="file not found: .*nowhere.geojson"):
        read_layer(DATA / "nowhere.geojson")


def test_unknown_extension_names_supported_formats(tmp_path):
    path = tmp_path / "streets.kml"
    path.write_text("<kml/>")
    with pytest.raises(FileFormatError) as info:
        read_layer(path)
    for name in (".geojson", ".gpkg", ".zip", ".csv", ".xlsx"):
        assert name in str(info.value)


@pytest.mark.parametrize(
    "name, content",
    [
        ("zero.csv", b""),
        ("header_only.csv", (DATA / "beijing_haidian_addresses_dev.csv").read_bytes()),
        ("blank_rows.csv", b"name,lon,lat\n\n,,\n"),
        ("zero.geojson", b""),
        ("no_features.geojson", b'{"type": "FeatureCollection", "features": []}'),
    ],
)
def test_empty_files(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match="empty"):
        read_layer(path, crs="EPSG:4326")


def test_empty_xlsx_sheet(tmp_path):
    workbook = openpyxl.Workbook()
    workbook.active.append(["name", "lon", "lat"])
    workbook.save(tmp_path / "empty.xlsx")
    with pytest.raises(FileFormatError, match="empty"):
        read_layer(tmp_path / "empty.xlsx", crs="EPSG:4326")


def test_csv_without_crs_is_refused(tmp_path):
    with pytest.raises(CRSError, match="--crs"):
        read_layer(HELSINKI_ADDRESSES)


def test_unknown_crs_is_refused():
    with pytest.raises(CRSError, match="unknown CRS"):
        read_layer(HELSINKI_ADDRESSES, crs="EPSG:999999")


def test_mapping_to_missing_column_lists_columns():
    with pytest.raises(InputError) as info:
        read_layer(HELSINKI_ADDRESSES, crs="EPSG:4326", mapping={"name": "路名"})
    assert "'路名'" in str(info.value) and "street, housenumber" in str(info.value)


def test_named_coordinate_columns_must_exist():
    with pytest.raises(InputError, match="columns are: osm_id"):
        read_layer(HELSINKI_ADDRESSES, crs="EPSG:4326", x="east", y="north")


def test_no_geometry_columns(tmp_path):
    path = write_csv(tmp_path / "names.csv", "name,district\n学清路,海淀\n")
    with pytest.raises(InputError, match="no geometry found.*columns are: name, district"):
        read_layer(path, crs="EPSG:4326")


def test_geojson_crs_member_contradicting_declared_crs(tmp_path):
    # the sample file carries a "crs" member (CRS84)
    with pytest.raises(CRSError, match="EPSG:4326.*EPSG:3857"):
        read_layer(BEIJING_STREETS, crs="EPSG:3857")
    assert read_layer(BEIJING_STREETS, crs="EPSG:4326").total == read_layer(BEIJING_STREETS).total


def test_geojson_without_crs_member_takes_declared_crs(tmp_path):
    streets = beijing_streets().head(3)
    projected = json.loads(streets.to_crs(4547).to_json(drop_id=True))
    projected.pop("crs", None)
    path = tmp_path / "gk.geojson"
    path.write_text(json.dumps(projected))

    result = read_layer(path, crs="EPSG:4547")
    assert result.crs == "EPSG:4547"
    assert shapely.equals_exact(result.frame.geometry.values, streets.geometry.values, tolerance=1e-7).all()
    # undeclared, it is RFC 7946 WGS84, so projected metres are out of range, row by row
    undeclared = read_layer(path)
    assert len(undeclared.frame) == 0 and len(undeclared.rejected) == 3
    assert "outside the valid range of EPSG:4326" in undeclared.rejected[0].reason


def test_xlsx_sheet_by_name_and_missing_sheet(tmp_path):
    workbook = openpyxl.Workbook()
    workbook.active.title = "说明"
    workbook.active.append(["这一页没有数据"])
    sheet = workbook.create_sheet("地址")
    sheet.append(["路名", "经度", "纬度"])
    sheet.append(["学清路", 116.3460866, 40.0037372])
    workbook.save(tmp_path / "book.xlsx")

    result = read_layer(tmp_path / "book.xlsx", crs="EPSG:4326", sheet="地址", mapping={"name": "路名"})
    assert result.frame["name"].tolist() == ["学清路"]
    assert (result.frame.geometry.x.iloc[0], result.frame.geometry.y.iloc[0]) == (116.3460866, 40.0037372)
    with pytest.raises(InputError, match="sheets: 说明, 地址"):
        read_layer(tmp_path / "book.xlsx", crs="EPSG:4326", sheet="街道")


# --- row problems --------------------------------------------------------------------
def test_latitude_out_of_range_rejected_with_row_number(tmp_path):
    path = write_csv(tmp_path / "pts.csv", "name,lon,lat\na,116.30,39.95\nb,116.31,95\nc,116.32,39.97\n")
    result = read_layer(path, crs="EPSG:4326")

    assert_consistent(result)
    assert result.frame["row"].tolist() == [1, 3]
    assert [p.row for p in result.rejected] == [2]
    assert "outside the valid range" in result.rejected[0].reason and "95" in result.rejected[0].reason
    assert "rows 2" in result.summary()


def test_missing_and_unparseable_coordinates(tmp_path):
    path = write_csv(tmp_path / "pts.csv", "name,lon,lat\na,116.30,39.95\nb,,39.96\nc,东经116,39.97\nd,116.3,inf\n")
    result = read_layer(path, crs="EPSG:4326")

    assert_consistent(result)
    reasons = {p.row: p.reason for p in result.rejected}
    assert reasons == {2: "missing lon", 3: "lon '东经116' is not a number", 4: "lat 'inf' is not a number"}


def test_swapped_lon_lat_flagged_only_with_extent(tmp_path):
    raw = pd.read_csv(HELSINKI_ADDRESSES, dtype=str).head(6)
    raw.loc[4, ["lon", "lat"]] = raw.loc[4, ["lat", "lon"]].to_numpy()  # row 5: lat in lon, lon in lat
    path = tmp_path / "helsinki.csv"
    raw.to_csv(path, index=False)

    # (60.17, 24.94) is a valid place (in Turkmenistan's latitudes): nothing to flag without an extent
    assert len(read_layer(path, crs="EPSG:4326").frame) == 6
    result = read_layer(path, crs="EPSG:4326", extent=HELSINKI_EXTENT)
    assert_consistent(result)
    assert [p.row for p in result.rejected] == [5]
    assert "lon/lat appear swapped" in result.rejected[0].reason
    assert 5 not in set(result.frame["row"])  # reported, not silently fixed


def test_swapped_beijing_point_reported_as_swapped_not_out_of_range(tmp_path):
    path = write_csv(tmp_path / "pts.csv", "name,lon,lat\na,116.30,39.95\nb,39.96,116.31\n")
    result = read_layer(path, crs="EPSG:4326", extent=HAIDIAN_EXTENT)
    assert [p.row for p in result.rejected] == [2]
    assert "swapped" in result.rejected[0].reason and "valid range" not in result.rejected[0].reason


def test_gbk_csv_with_chinese_street_names(tmp_path):
    streets = beijing_streets()
    starts = shapely.get_point(streets.geometry.values, 0)
    table = pd.DataFrame({"路名": streets["name"], "经度": shapely.get_x(starts), "纬度": shapely.get_y(starts)})
    path = write_csv(tmp_path / "gbk.csv", table.to_csv(index=False), encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # really not UTF-8

    result = read_layer(path, crs="EPSG:4326", mapping={"name": "路名"})

    assert_consistent(result)
    assert result.frame["name"].tolist() == streets["name"].tolist()
    assert "学清路" in set(result.frame["name"])
    np.testing.assert_allclose(result.frame.geometry.x, table["经度"], atol=1e-9)


def test_gbk_real_address_file(tmp_path):
    path = write_csv(tmp_path / "sz.csv", SHENZHEN_ADDRESSES.read_text(encoding="utf-8"), encoding="gbk")
    result = read_layer(path, crs="EPSG:4326")
    expected = read_layer(SHENZHEN_ADDRESSES, crs="EPSG:4326")
    pd.testing.assert_frame_equal(text_attributes(result.frame), text_attributes(expected.frame))
    assert result.frame["name_zh"].iloc[0] == "香港中文大学（深圳）"


def test_utf8_bom_and_tab_separated_txt(tmp_path):
    path = write_csv(tmp_path / "pts.txt", "\ufeff名称\tlng\tlatitude\n学清路\t116.3460866\t40.0037372\n")
    result = read_layer(path, crs="EPSG:4326")
    assert result.frame.columns.tolist() == ["row", "名称", "geometry"]
    assert result.frame["名称"].iloc[0] == "学清路"


def test_row_with_extra_fields_rejected(tmp_path):
    path = write_csv(tmp_path / "pts.csv", "name,lon,lat\na,116.30,39.95\nb,c,116.31,39.96\nd,116.32,39.97\n")
    result = read_layer(path, crs="EPSG:4326")
    assert_consistent(result)
    assert result.total == 3 and [p.row for p in result.rejected] == [2]
    assert "4 fields" in result.rejected[0].reason


BOWTIE = "POLYGON ((116.30 39.95, 116.31 39.96, 116.31 39.95, 116.30 39.96, 116.30 39.95))"
SQUARE = "POLYGON ((116.30 39.95, 116.31 39.95, 116.31 39.96, 116.30 39.96, 116.30 39.95))"


def test_bowtie_polygon_repaired_and_reported(tmp_path):
    path = write_csv(tmp_path / "blocks.csv", f'name,wkt\nbowtie,"{BOWTIE}"\nsquare,"{SQUARE}"\n')
    result = read_layer(path, crs="EPSG:4326", expected_geom="polygon")

    assert_consistent(result)
    assert len(result.frame) == 2 and not result.rejected
    assert [p.row for p in result.repaired] == [1]
    assert "Self-intersection" in result.repaired[0].reason
    repaired = result.frame.geometry.iloc[0]
    assert repaired.is_valid and repaired.geom_type == "MultiPolygon" and len(repaired.geoms) == 2
    assert repaired.area == pytest.approx(0.5 * shapely.from_wkt(SQUARE).area)


def test_bowtie_in_geojson_repaired(tmp_path):
    bowtie = shapely.from_wkt(BOWTIE)
    path = tmp_path / "blocks.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {"name": "b"}, "geometry": shapely.geometry.mapping(bowtie)}
                ],
            }
        )
    )
    result = read_layer(path)
    assert [p.row for p in result.repaired] == [1] and result.frame.geometry.iloc[0].is_valid


@pytest.mark.parametrize("fmt", ["csv", "geojson"])
def test_unclosed_ring_closed_and_reported(tmp_path, fmt):
    ring = [(116.30, 39.95), (116.31, 39.95), (116.31, 39.96), (116.30, 39.96)]  # last vertex != first
    if fmt == "csv":
        wkt = "POLYGON ((" + ", ".join(f"{x} {y}" for x, y in ring) + "))"
        path = write_csv(tmp_path / "open.csv", f'name,wkt\nopen,"{wkt}"\n')
    else:
        path = tmp_path / "open.geojson"
        path.write_text(
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {"name": "open"},
                            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]},
                        }
                    ],
                }
            )
        )

    result = read_layer(path, crs="EPSG:4326")

    assert_consistent(result)
    assert [p.row for p in result.repaired] == [1] and "not closed" in result.repaired[0].reason
    polygon = result.frame.geometry.iloc[0]
    assert polygon.is_valid and polygon.exterior.is_closed
    assert polygon.area == pytest.approx(shapely.from_wkt(SQUARE).area)


def test_unreadable_and_collapsing_geometries_rejected(tmp_path):
    text = (
        "name,wkt\n"
        'flat,"POLYGON ((116.30 39.95, 116.31 39.95, 116.32 39.95, 116.30 39.95))"\n'
        'garbage,"POLYGON ((116.30 abc))"\n'
        'empty,"POINT EMPTY"\n'
        f'ok,"{SQUARE}"\n'
        "none,\n"
    )
    result = read_layer(write_csv(tmp_path / "bad.csv", text), crs="EPSG:4326")

    assert_consistent(result)
    reasons = {p.row: p.reason for p in result.rejected}
    assert result.frame["row"].tolist() == [4]
    assert "repair would turn" in reasons[1]  # a polygon flattened to a line is not "repaired"
    assert reasons[2].startswith("unreadable WKT") and "abc" in reasons[2]
    assert reasons[3] == "empty geometry"
    assert reasons[5].startswith("missing WKT")


@pytest.fixture
def mixed_geojson(tmp_path) -> Path:
    geometries = [
        shapely.LineString([(116.30, 39.95), (116.31, 39.95)]),
        shapely.MultiLineString([[(116.30, 39.96), (116.31, 39.96)], [(116.32, 39.96), (116.33, 39.96)]]),
        shapely.Point(116.30, 39.95),
        shapely.from_wkt(SQUARE),
    ]
    path = tmp_path / "mixed.geojson"
    gpd.GeoDataFrame({"name": list("abcd")}, geometry=geometries, crs=4326).to_file(path)
    return path


def test_mixed_geometry_types_with_expected_geom(mixed_geojson):
    result = read_layer(mixed_geojson, expected_geom="line")

    assert_consistent(result)
    assert result.frame["name"].tolist() == ["a", "b"]
    assert set(result.frame.geom_type) == {"MultiLineString"}
    reasons = {p.row: p.reason for p in result.rejected}
    assert set(reasons) == {3, 4}
    assert reasons[3].startswith("Point in a line layer") and reasons[4].startswith("Polygon in a line layer")


def test_mixed_geometry_types_accepted_without_expected_geom(mixed_geojson):
    result = read_layer(mixed_geojson)
    assert result.frame.geom_type.tolist() == ["LineString", "MultiLineString", "Point", "Polygon"]


def test_bad_expected_geom_value():
    with pytest.raises(InputError, match="expected_geom"):
        read_layer(BEIJING_STREETS, expected_geom="road")


@pytest.mark.parametrize("id_column, mapping", [("id", None), ("编号", {"id": "编号"})])
def test_duplicate_ids_reported_with_both_rows(tmp_path, id_column, mapping):
    text = (
        f"{id_column},name,lon,lat\n"
        "A1,a,116.30,39.95\nB2,b,116.31,39.95\n A1 ,c,116.32,39.95\n,d,116.33,39.95\n,e,116.34,39.95\n"
    )
    result = read_layer(write_csv(tmp_path / "ids.csv", text), crs="EPSG:4326", mapping=mapping)

    assert_consistent(result)
    assert result.frame["name"].tolist() == ["a", "b", "d", "e"]  # blank ids are not duplicates
    assert [p.row for p in result.rejected] == [3]
    assert "duplicate id 'A1'" in result.rejected[0].reason and "row 1" in result.rejected[0].reason


def test_mapping_target_displaces_existing_column(tmp_path):
    path = write_csv(tmp_path / "s.csv", "name,name_zh,lon,lat\nXueqing Road,学清路,116.3,40.0\n")
    frame = read_layer(path, crs="EPSG:4326", mapping={"name": "name_zh"}).frame
    assert frame.columns.tolist() == ["row", "name_orig", "name", "geometry"]
    assert frame["name"].iloc[0] == "学清路" and frame["name_orig"].iloc[0] == "Xueqing Road"


def test_every_problem_of_a_row_is_reported(tmp_path):
    path = write_csv(tmp_path / "s.csv", "id,lon,lat\n7,116.3,40.0\n7,116.3,95\n")
    result = read_layer(path, crs="EPSG:4326")
    assert len(result.rejected) == 1
    assert "valid range" in result.rejected[0].reason and "same as row 1" in result.rejected[0].reason


# --- CSV injection -----------------------------------------------------------------
@pytest.mark.parametrize(
    "value, expected",
    [
        (INJECTION, "'" + INJECTION),
        ("+86 10 6275 1234", "'+86 10 6275 1234"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-5", "-5"),
        ("+1.5e3", "+1.5e3"),
        ("学清路 = Xueqing Road", "学清路 = Xueqing Road"),
        ("", ""),
        (5, 5),
        (None, None),
    ],
)
def test_neutralise_formula(value, expected):
    assert neutralise_formula(value) == expected


def _with_injection() -> gpd.GeoDataFrame:
    frame = beijing_streets().head(3)
    frame.loc[frame.index[1], "name"] = INJECTION
    return frame


def test_csv_injection_neutralised(tmp_path):
    path = write_layer(_with_injection(), tmp_path / "s.csv")
    assert f"'{INJECTION}" in path.read_text(encoding="utf-8-sig")
    back = read_layer(path, crs="EPSG:4326").frame
    assert back["name"].iloc[1] == "'" + INJECTION


def test_xlsx_injection_stored_as_text(tmp_path):
    path = write_layer(_with_injection(), tmp_path / "s.xlsx")
    sheet = openpyxl.load_workbook(path).active  # not data_only: formulas would show as such
    column = [c.value for c in sheet[1]].index("name") + 1
    cell = sheet.cell(3, column)
    assert cell.data_type == "s" and cell.value == "'" + INJECTION
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)


# --- GCJ-02 ------------------------------------------------------------------------
def test_gcj02_points_converted_to_wgs84(tmp_path):
    wgs = read_layer(SHENZHEN_ADDRESSES, crs="EPSG:4326").frame
    glon, glat = wgs84_to_gcj02(wgs.geometry.x.to_numpy(), wgs.geometry.y.to_numpy())
    path = tmp_path / "amap.csv"
    pd.DataFrame({"name": wgs["name_zh"], "lng": glon, "lat": glat}).to_csv(path, index=False)

    result = read_layer(path, crs="gcj02")

    assert_consistent(result)
    assert result.crs == "GCJ-02"
    expected_lon, expected_lat = gcj02_to_wgs84(glon, glat)
    np.testing.assert_allclose(result.frame.geometry.x, expected_lon, atol=1e-9)
    np.testing.assert_allclose(result.frame.geometry.y, expected_lat, atol=1e-9)
    np.testing.assert_allclose(result.frame.geometry.x, wgs.geometry.x, atol=1e-7)  # back where it was
    assert np.abs(glon - wgs.geometry.x.to_numpy()).min() > 1e-3  # the offset (~500 m) was real


def test_gcj02_lines_converted_vertex_by_vertex(tmp_path):
    streets = beijing_streets().head(5)
    gcj = shapely.transform(streets.geometry.values, lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1])))
    path = tmp_path / "amap.csv"
    pd.DataFrame({"name": streets["name"], "wkt": shapely.to_wkt(gcj, rounding_precision=-1)}).to_csv(path, index=False)

    result = read_layer(path, crs="gcj02", expected_geom="line")

    got = shapely.get_coordinates(result.frame.geometry.values)
    want = np.column_stack(gcj02_to_wgs84(*shapely.get_coordinates(gcj).T))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-9)
    np.testing.assert_allclose(got, shapely.get_coordinates(streets.geometry.values), atol=1e-7)


def test_gcj02_declared_for_geojson_labelled_wgs84(tmp_path):
    # AMap-derived files can only say "WGS84"; declaring GCJ-02 for them is allowed
    result = read_layer(BEIJING_STREETS, crs="gcj02")
    assert result.crs == "GCJ-02"
    shift = shapely.get_coordinates(read_layer(BEIJING_STREETS).frame.geometry.values) - shapely.get_coordinates(
        result.frame.geometry.values
    )
    assert np.abs(shift).max() > 1e-3


def test_mostly_latin_gbk_csv_is_read_as_gbk_and_cp1252_stays_latin(tmp_path):
    """A hotline sheet of Latin text with one Chinese cell fools statistical detectors; gisgrid does not."""
    from gisgrid.io.tables import detect_encoding

    gbk = tmp_path / "mixed.csv"
    rows = ["lon,lat,address"] + [f"114.2{i},22.38,Street {i}" for i in range(200)] + ["114.3,22.38,人民路88号"]
    gbk.write_bytes("\n".join(rows).encode("gbk"))
    result = read_layer(gbk, crs="EPSG:4326")
    assert result.frame["address"].iloc[-1] == "人民路88号"
    latin = "name,street\nAino Mäkinen,Hämeentie 5\nOskari Öhman,Töölönkatu 2\n".encode("cp1252")
    assert detect_encoding(latin) == "cp1252"


def test_a_repeated_or_blank_header_name_never_takes_a_name_the_user_gave(tmp_path):
    from gisgrid.geocode.batch import read_table
    from gisgrid.io import tables

    header = ["备注", "备注", "备注_2", "", "column_4", "地址"]
    row = ["mine", "dup", "own 备注_2", "blank", "own column_4", "Kaivokatu 1"]
    (tmp_path / "dup.csv").write_text(",".join(header) + "\n" + ",".join(row) + "\n", encoding="utf-8")
    wb = openpyxl.Workbook()
    wb.active.append(header)
    wb.active.append(row)
    wb.save(tmp_path / "dup.xlsx")
    want = {
        "备注": "mine",
        "备注_3": "dup",
        "备注_2": "own 备注_2",
        "column_4_2": "blank",
        "column_4": "own column_4",
        "地址": "Kaivokatu 1",
    }
    for table in (
        tables.read_table(tmp_path / "dup.csv")[1].frame,
        read_table(tmp_path / "dup.csv"),
        read_table(tmp_path / "dup.xlsx"),
    ):
        assert dict(zip(table.columns, table.iloc[0])) == want


def _zip_without(tmp_path, dropped: str) -> Path:
    frame = beijing_streets().head(5)
    write_layer(frame, tmp_path / "roads.shp")
    target = tmp_path / "roads.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for part in tmp_path.glob("roads.*"):
            if part.suffix not in (dropped, ".zip"):
                archive.write(part, part.name)
    return target


@pytest.mark.parametrize(("dropped", "named"), [(".shx", "roads.shx (its index)"), (".dbf", "roads.dbf")])
def test_a_shapefile_missing_a_part_names_the_part(tmp_path, dropped, named):
    with pytest.raises(FileFormatError, match=re.escape(named)):
        read_layer(_zip_without(tmp_path, dropped), crs="EPSG:4326")


def test_a_plain_shapefile_missing_its_index_names_it(tmp_path):
    write_layer(beijing_streets().head(5), tmp_path / "roads.shp")
    (tmp_path / "roads.shx").unlink()
    with pytest.raises(FileFormatError, match=r"roads\.shx"):
        read_layer(tmp_path / "roads.shp", crs="EPSG:4326")


def test_a_file_that_is_not_geojson_says_so_without_gdal_jargon(tmp_path):
    fake = tmp_path / "streets.geojson"
    fake.write_text("id,name\n1,学院路\n", encoding="utf-8")
    with pytest.raises(FileFormatError) as info:
        read_layer(fake)
    message = str(info.value)
    assert "not GeoJSON" in message and "streets.geojson" in message
    assert "recognized" not in message and "/vsi" not in message and str(tmp_path) not in message
