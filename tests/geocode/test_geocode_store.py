"""The geocoder on the database: gazetteer from the tables, `gisgrid import addresses`, `gisgrid geocode`."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from gisgrid.config import PROJECT_ROOT

DATA = PROJECT_ROOT / "gisgrid" / "data"


@pytest.fixture(scope="module")
def gazetteers(engine, town):
    from gisgrid.geocode.store import load_gazetteer

    with engine.connect() as conn:
        return load_gazetteer(conn)


def test_db_gazetteer_finds_sha_tin_and_helsinki_addresses(gazetteers):
    # one gazetteer per metric CRS: Helsinki and the Chinese towns are far apart
    assert len(gazetteers) >= 2
    sha_tin = pd.read_csv(DATA / "shatin_addresses_dev.csv", dtype=str)
    row = sha_tin[sha_tin["street_zh"] == "多石街"].iloc[0]
    result = gazetteers.geocode(f"多石街{row['housenumber']}号")
    assert result.quality == "address_point", result
    assert abs(result.lon - float(row["lon"])) < 1e-4 and abs(result.lat - float(row["lat"])) < 1e-4
    # Hong Kong's regions and a place before the street, as clerks write them: still the door plate
    for text in (f"新界多石街{row['housenumber']}號", f"香港新界沙田多石街{row['housenumber']}号"):
        assert gazetteers.geocode(text) == result, text
    hel = gazetteers.geocode("Kaivokatu 1")
    assert hel.quality == "address_point" and abs(hel.lat - 60.17132) < 1e-3
    assert gazetteers.geocode("").quality == "failed"


def test_gazetteer_for_one_jurisdiction(engine, town):
    from gisgrid.errors import InputError
    from gisgrid.geocode.store import load_gazetteer

    with engine.connect() as conn:
        one = load_gazetteer(conn, jurisdiction_code="990091")
        assert len(one) == 1
        with pytest.raises(InputError, match="not found"):
            load_gazetteer(conn, jurisdiction_code="nope")
    assert one.geocode("Kaivokatu 1").ok
    assert not one.geocode("多石街23号").ok


def _encodes(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _addresses_file(tmp_path, encoding: str, n: int = 200):
    hel = pd.read_csv(DATA / "helsinki_addresses_dev.csv", dtype=str).dropna(subset=["housenumber"])
    if encoding == "gbk":  # GBK has no ä/ö: the Finnish names it can spell, plus Chinese ones below
        hel = hel[[_encodes(f"{s} {h}", encoding) for s, h in zip(hel["street"], hel["housenumber"])]]
    hel = hel.head(n)
    texts = (hel["street"] + " " + hel["housenumber"]).tolist()
    texts += ["", "asdf qwerty 999", "<b>bold</b> Main", "人民路88号", "   "]
    if encoding == "gbk":
        texts += ["沙田鄉事會路", "多石街23号"]
    frame = pd.DataFrame(
        {
            "编号": [f"R{i:04d}" for i in range(len(texts))],
            "地址": texts,
            "备注": ["市民投诉路边有垃圾" if i % 2 else "巡查发现" for i in range(len(texts))],
        }
    )
    path = tmp_path / f"hotline_{encoding}.csv"
    frame.to_csv(path, index=False, encoding=encoding)
    return path, frame


def _cli_env(db_url):
    return {"GISGRID_DATABASE_URL": db_url}


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_geocode_command_keeps_every_row_and_routes_located_rows(tmp_path, db_url, town, encoding):
    from gisgrid.cli import main

    src, frame = _addresses_file(tmp_path, encoding)
    dst = tmp_path / "out.csv"
    res = CliRunner().invoke(
        main,
        ["geocode", str(src), "--column", "地址", "-o", str(dst), "--quiet"],
        env=_cli_env(db_url),
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    assert "address_point" in res.output and "with an owner" in res.output
    out = pd.read_csv(dst, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(out) == len(frame)
    assert out["编号"].tolist() == frame["编号"].tolist()
    assert out["地址"].tolist() == frame["地址"].fillna("").tolist()
    for col in ("lon", "lat", "quality", "confidence", "matched_name", "owner_name", "chain", "target", "rule"):
        assert col in out.columns
    located = out["quality"] != "failed"
    assert located.sum() >= 190
    assert (out.loc[located, "owner_name"].str.strip() != "").all()
    assert (out.loc[~located, "owner_name"] == "").all()
    assert out.loc[out["地址"].str.strip() == "", "quality"].eq("failed").all()
    if encoding == "gbk":
        assert out.loc[out["地址"] == "多石街23号", "quality"].iloc[0] != "failed"


def test_geocode_command_resumes_and_writes_xlsx(tmp_path, db_url, town, engine):
    from gisgrid.config import load_settings
    from gisgrid.geocode.route import geocode_route_file
    from gisgrid.geocode.store import load_gazetteer
    from gisgrid.routing.store import load_deployment

    src, frame = _addresses_file(tmp_path, "utf-8")
    dst = tmp_path / "out.xlsx"
    with engine.connect() as conn:
        gaz = load_gazetteer(conn)
        dep = load_deployment(conn, load_settings())
    first = geocode_route_file(src, dst, "地址", gaz, dep, progress=False, chunk_rows=50, max_rows=100)
    assert not first.complete and first.rows_done == 100
    second = geocode_route_file(src, dst, "地址", gaz, dep, progress=False, chunk_rows=50)
    assert second.complete and second.rows_skipped == 100 and second.rows_done == len(frame) - 100
    out = pd.read_excel(dst, dtype=str).fillna("")
    assert len(out) == len(frame) and out["编号"].tolist() == frame["编号"].tolist()


def test_wrong_column_lists_the_columns(tmp_path, db_url, town):
    from gisgrid.cli import main

    src, _ = _addresses_file(tmp_path, "utf-8", n=5)
    res = CliRunner().invoke(main, ["geocode", str(src), "--column", "address", "--quiet"], env=_cli_env(db_url))
    assert res.exit_code == 2
    assert "column 'address' not found" in res.output and "编号, 地址, 备注" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_import_addresses_command(tmp_path, db_url, town, engine):
    from gisgrid.cli import main

    path = tmp_path / "adr.csv"
    # a door plate with a building name, a plain door plate, a row with nothing, and a landmark (POI)
    pd.DataFrame(
        {
            "street": ["Testikatu", "Testikatu", "", ""],
            "housenumber": ["1", "3", "5", ""],
            "name": ["Koulu", "", "", "测试医院"],
            "lon": [24.94, 24.941, 24.942, 24.943],
            "lat": [60.17, 60.1701, 60.1702, 60.1703],
        }
    ).to_csv(path, index=False)
    res = CliRunner().invoke(main, ["import", "addresses", str(path), "--crs", "EPSG:4326"], env=_cli_env(db_url))
    try:
        assert "3 of 4 rows imported" in res.output, res.output
        assert "row 3: street and name are empty" in res.output
        with engine.connect() as conn:
            from gisgrid.geocode.store import load_gazetteer

            gaz = load_gazetteer(conn, jurisdiction_code="990091")
            jid = conn.exec_driver_sql(
                "SELECT DISTINCT jurisdiction_id FROM address_point WHERE street = 'Testikatu'"
            ).scalar()
            assert jid is not None
        assert gaz.geocode("Testikatu 3").quality == "address_point"
        gate = gaz.geocode("测试医院门口")
        assert gate.ok and gate.matched_name == "测试医院" and abs(gate.lon - 24.943) < 1e-6
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM address_point WHERE street = 'Testikatu' OR name = '测试医院'")


def test_db_gazetteer_uses_division_codes_of_the_jurisdictions(gazetteers):
    """Prefixes are checked against the stored jurisdictions' codes: 440307 is 龙岗区, 81 is Hong Kong."""
    longgang = pd.read_csv(DATA / "shenzhen_longgang_addresses_dev.csv", dtype=str).iloc[0]
    written = f"广东省深圳市龙岗区{longgang['street']}{longgang['housenumber']}"
    found = gazetteers.geocode(written if written.endswith("号") else written + "号")
    assert found.quality == "address_point", found
    assert abs(found.lon - float(longgang["lon"])) < 1e-4 and abs(found.lat - float(longgang["lat"])) < 1e-4
    assert gazetteers.geocode("香港特别行政区沙田正街1号").ok
    # a Sha Tin street written with a Beijing district: the district is believed, at district level
    mixed = gazetteers.geocode("北京市海淀区沙田正街1号")
    assert mixed.quality == "jurisdiction" and mixed.matched_name == "海淀区" and "沙田正街" in mixed.note
    # a province the deployment does not cover at all
    assert gazetteers.geocode("上海市黄浦区南京东路100号").quality == "failed"


# --- routing a written address to the street it names (rule address_street) ---------------------
@pytest.fixture(scope="module")
def deployment(engine, town):
    from gisgrid.config import load_settings
    from gisgrid.routing.store import load_deployment

    with engine.connect() as conn:
        return load_deployment(conn, load_settings())


def _segment_at(engine, lon: float, lat: float) -> tuple[int, str]:
    """The segment whose frontage area holds a point, and its street's name (one only, checked)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("""
            SELECT g.id, s.name FROM segment g JOIN street s ON s.id = g.street_id
            WHERE ST_Intersects(g.area, ST_SetSRID(ST_Point(:lon, :lat), 4326))"""),
            {"lon": lon, "lat": lat},
        ).all()
    assert len(rows) == 1
    return rows[0][0], rows[0][1]


@pytest.mark.parametrize(
    "text, street, cross",
    [
        ("Kalevankatu 14", "Kalevankatu", "Annankatu"),  # the cases: placed in the cross street's area
        ("Bulevardi 13", "Bulevardi", "Fredrikinkatu"),
    ],
)
def test_a_geocoded_corner_address_reaches_its_own_streets_chief(engine, gazetteers, deployment, text, street, cross):
    """The clerks' batch routes a written address to the street it names; a GPS point at the same place
    still goes to the frontage area that holds it (the cross street's)."""
    from gisgrid.geocode.route import geocode_and_route, output_names
    from gisgrid.routing.store import explain_point

    out = geocode_and_route(pd.DataFrame({"地址": [text]}), "地址", gazetteers, deployment).iloc[0]
    names = output_names(["地址"])
    assert out[names["quality"]] == "interpolated" and out[names["rule"]] == "address_street"
    assert out[names["target"]].startswith(street) and out[names["owner_name"]]
    lon, lat = float(out[names["lon"]]), float(out[names["lat"]])
    area_segment, area_street = _segment_at(engine, lon, lat)
    assert area_street == cross
    gps = explain_point(deployment, lon=lon, lat=lat)
    assert (gps["rule"], gps["target_id"]) == ("segment_area", area_segment)
    assert int(out[names["target_id"]]) != area_segment


def test_landmarks_crossings_and_hand_placed_points_in_the_batch(gazetteers, deployment):
    from gisgrid.geocode.route import address_streets, geocode_and_route, output_names

    names = output_names(["地址"])
    frame = pd.DataFrame({"地址": ["Kaivokatu / Keskuskatu", "Kalevankatu 14", "nowhere at all"]})
    out = geocode_and_route(frame, "地址", gazetteers, deployment)
    street, cross = address_streets(out, names)
    assert list(street) == ["Kaivokatu", "Kalevankatu", ""] and list(cross) == ["Keskuskatu", "", ""]
    assert out.loc[0, names["rule"]] == "address_street" and out.loc[0, names["target"]].startswith("Kaivokatu")
    # a landmark or a point placed by hand names no street: routed by its point
    placed = out.copy()
    placed.loc[1, names["quality"]] = "manual"
    placed.loc[2, [names[c] for c in ("lon", "lat", "quality", "matched_name", "geocode_note")]] = [
        out.loc[1, names["lon"]],
        out.loc[1, names["lat"]],
        "street",
        "Kalevankatu",
        "landmark",
    ]
    street, cross = address_streets(placed, names)
    assert list(street) == ["Kaivokatu", "", ""]


def test_cli_assign_takes_a_written_street_column(engine, gazetteers, db_url, town, tmp_path):
    """`gisgrid assign FILE --address-street COLUMN`: a file with coordinates and a written street."""
    from gisgrid.cli import main

    kaleva = gazetteers.geocode("Kalevankatu 14")
    area_segment, _ = _segment_at(engine, kaleva.lon, kaleva.lat)
    src = tmp_path / "reports.csv"
    pd.DataFrame({"lon": [kaleva.lon] * 2, "lat": [kaleva.lat] * 2, "街道": ["Kalevankatu", ""]}).to_csv(
        src, index=False
    )
    dst = tmp_path / "out.csv"
    args = ["assign", str(src), "--crs", "EPSG:4326", "--address-street", "街道", "-o", str(dst)]
    res = CliRunner().invoke(main, args, env=_cli_env(db_url), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "address_street" in res.output
    out = pd.read_csv(dst, encoding="utf-8-sig")
    assert list(out["rule"]) == ["address_street", "segment_area"]
    assert out.loc[1, "target_id"] == area_segment != out.loc[0, "target_id"]
    assert out.loc[0, "reason"] == "address street Kalevankatu: the written address names it"
    bad = CliRunner().invoke(main, [*args[:4], "--address-street", "street"], env=_cli_env(db_url))
    assert bad.exit_code != 0 and "address street column 'street' not found" in bad.output
