"""Open311 GeoReport v2 with real clients on 127.0.0.1: the PyPI ``georeport`` client, form-encoded POSTs as
Open311 clients send them, and every JSON answer checked against the GeoReport v2 schemas."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest
import requests
import sqlalchemy as sa
import xmltodict
from georeport import GeoReport
from referencing import Registry, Resource

from tests.interop.conftest import HAIDIAN, LONGGANG

SCHEMAS = Path(__file__).parent / "open311_schemas"


def _registry() -> Registry:
    resources = []
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text())
        resources.append((path.name, Resource.from_contents(schema)))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def valid(name: str, data) -> None:
    """Validate against our GeoReport v2 schema ``name`` (formats checked: date-time, with its offset)."""
    schema = json.loads((SCHEMAS / name).read_text())
    validator = jsonschema.Draft202012Validator(
        schema, registry=REGISTRY, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(data), key=str)
    assert not errors, errors[0]


def _point_in(engine, town_code: str) -> tuple[float, float]:
    """A point on a segment of the town's streets (lon, lat)."""
    with engine.connect() as conn:
        return tuple(
            conn.execute(
                sa.text("""
                SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(g.geom, 0.5) AS p FROM segment g
                JOIN street s ON s.id = g.street_id JOIN jurisdiction j ON j.id = s.jurisdiction_id
                WHERE j.code = :c ORDER BY g.id LIMIT 1) t"""),
                {"c": town_code},
            ).one()
        )


@pytest.fixture()
def netrc(tmp_path, monkeypatch):
    """Give plain ``requests`` calls (the georeport client's) an API key, as a ``.netrc`` does: HTTP Basic with
    the key as password."""

    def use(key: str):
        path = tmp_path / "netrc"
        path.write_text(f"machine 127.0.0.1 login apikey password {key}\n")
        path.chmod(0o600)
        monkeypatch.setenv("NETRC", str(path))

    return use


def _post(base_url, key, **fields):
    return requests.post(f"{base_url}/open311/v2/requests.json", data={"api_key": key, **fields}, timeout=30)


@pytest.fixture(scope="module")
def posted(base_url, interop_keys, interop_engine):
    """A request POSTed by the Longgang client at a point of its town, as an Open311 client sends it."""
    lon, lat = _point_in(interop_engine, LONGGANG)
    res = _post(
        base_url,
        interop_keys["longgang"],
        service_code="0101",
        lat=f"{lat:.7f}",
        long=f"{lon:.7f}",
        description="垃圾堆在路边",
        media_url="https://example.org/photo.jpg",
    )
    assert res.status_code == 201, res.text
    return res.json()


def test_discovery_and_services(base_url):
    res = requests.get(f"{base_url}/open311/v2/discovery.json", timeout=30)
    assert res.status_code == 200 and res.json()["endpoints"][0]["url"].endswith("/open311/v2/")
    services = requests.get(f"{base_url}/open311/v2/services.json", timeout=30).json()
    valid("services.json", services)
    codes = {s["service_code"]: s for s in services}
    assert "0101" in codes and codes["0101"]["service_name"] == "暴露垃圾" and codes["0101"]["group"] == "事件"
    english = requests.get(f"{base_url}/open311/v2/services.json?lang=en", timeout=30).json()
    assert {s["service_code"]: s["service_name"] for s in english}["0101"] == "Exposed or piled garbage"
    xml = requests.get(f"{base_url}/open311/v2/services.xml", timeout=30)
    assert xml.headers["Content-Type"].startswith("text/xml")
    assert len(xmltodict.parse(xml.content)["services"]["service"]) == len(services)


def test_georeport_client_lists_services_and_requests_and_reads_one(base_url, interop_keys, posted, netrc):
    netrc(interop_keys["longgang"])
    for fmt in ("json", "xml"):
        client = GeoReport(f"{base_url}/open311/v2", output_format=fmt)
        services = client.get_service_list()
        assert "0101" in {s["service_code"] for s in services}
        found = client.get_service_requests(service_code="0101")
        ids = [r["service_request_id"] for r in found]
        assert posted[0]["service_request_id"] in ids
        one = client.get_service_request(posted[0]["service_request_id"])
        assert one["service_request_id"] == posted[0]["service_request_id"]
        assert one["status"] == "open" and one["service_code"] == "0101"
        assert one["media_url"] == "https://example.org/photo.jpg"
        assert one["expected_datetime"] and one["agency_responsible"]


def test_post_creates_a_case_on_the_dispatchers_queue(base_url, interop_app, interop_keys, interop_engine):
    with interop_engine.connect() as conn:
        town = conn.execute(
            sa.text("""SELECT j.code FROM role_grant g JOIN user_account u ON u.id = g.user_id
                       JOIN jurisdiction j ON j.id = g.jurisdiction_id WHERE u.username = 'dispatcher'""")
        ).scalar()
    key = interop_keys["longgang" if town == LONGGANG else "haidian"]
    lon, lat = _point_in(interop_engine, town)
    res = _post(base_url, key, service_code="0502", lat=str(lat), long=str(lon), description="车停在人行道上")
    assert res.status_code == 201, res.text
    valid("post-response.json", res.json())
    case_id = int(res.json()[0]["service_request_id"])
    token = res.json()[0]["token"]
    with interop_engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT status, due_at, source, assigned_type, reporter_user_id FROM report WHERE id = :i"),
            {"i": case_id},
        ).one()
        author = conn.execute(
            sa.text("SELECT u.username FROM case_event e JOIN user_account u ON u.id = e.actor_user_id "
                    "WHERE e.report_id = :i"), {"i": case_id}
        ).scalar()  # fmt: skip
    assert row.status == "reported" and row.due_at is not None and row.source == "api" and row.assigned_type
    assert author == ("client-longgang" if town == LONGGANG else "client-haidian")  # the key's account
    page = interop_app.test_client(user="dispatcher").get("/cases").get_data(as_text=True)
    assert 'id="gg-view-queue"' in page and f'data-case="{case_id}"' in page
    # the token finds it again
    looked = requests.get(f"{base_url}/open311/v2/tokens/{token}.json", params={"api_key": key}, timeout=30)
    assert looked.json() == [{"service_request_id": str(case_id), "token": token}]


def test_post_by_address_is_geocoded(base_url, interop_keys, interop_engine):
    with interop_engine.connect() as conn:
        street = conn.execute(
            sa.text("""SELECT s.name FROM street s JOIN jurisdiction j ON j.id = s.jurisdiction_id
                       WHERE j.code = :c AND s.name ~ '路$' ORDER BY length(s.name) DESC, s.id LIMIT 1"""),
            {"c": LONGGANG},
        ).scalar()
    res = _post(base_url, interop_keys["longgang"], service_code="0101", address_string=street)
    assert res.status_code == 201, res.text
    case_id = int(res.json()[0]["service_request_id"])
    with interop_engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT address, ST_X(geom) AS lon, jurisdiction_id FROM report WHERE id = :i"), {"i": case_id}
        ).one()
    assert row.address == street and 113 < row.lon < 115  # placed in Longgang
    nowhere = _post(base_url, interop_keys["longgang"], service_code="0101", address_string="不存在的地方路999号")
    assert nowhere.status_code == 400
    valid("errors.json", nowhere.json())
    assert "address_string" in nowhere.json()[0]["description"]


def test_requests_reach_no_further_than_the_clients_scope(base_url, interop_keys, posted):
    rid = posted[0]["service_request_id"]
    mine = requests.get(
        f"{base_url}/open311/v2/requests.json", params={"api_key": interop_keys["longgang"]}, timeout=30
    )
    valid("requests.json", mine.json())
    assert rid in {r["service_request_id"] for r in mine.json()}
    theirs = requests.get(
        f"{base_url}/open311/v2/requests.json", params={"api_key": interop_keys["haidian"]}, timeout=30
    ).json()
    valid("requests.json", theirs)
    assert rid not in {r["service_request_id"] for r in theirs}
    assert theirs and all(112 < r["long"] < 120 and r["lat"] > 35 for r in theirs)  # Beijing's only
    other = requests.get(
        f"{base_url}/open311/v2/requests/{rid}.json", params={"api_key": interop_keys["haidian"]}, timeout=30
    )
    assert other.status_code == 404
    valid("errors.json", other.json())
    bare = requests.get(f"{base_url}/open311/v2/requests.json", params={"api_key": interop_keys["bare"]}, timeout=30)
    assert bare.status_code == 200 and bare.json() == []  # an account that sees nothing reads nothing
    anonymous = requests.get(f"{base_url}/open311/v2/requests.json", timeout=30)
    assert anonymous.status_code == 403 and anonymous.json()[0]["code"] == 403
    xml = requests.get(f"{base_url}/open311/v2/requests/{rid}.xml", timeout=30)
    assert xml.status_code == 403 and xmltodict.parse(xml.content)["errors"]["error"]["code"] == "403"


def test_request_fields_and_filters(base_url, interop_keys, posted, interop_engine):
    key = interop_keys["longgang"]
    rid = posted[0]["service_request_id"]
    one = requests.get(f"{base_url}/open311/v2/requests/{rid}.json", params={"api_key": key}, timeout=30).json()
    valid("requests.json", one)
    r = one[0]
    requested = dt.datetime.fromisoformat(r["requested_datetime"])
    expected = dt.datetime.fromisoformat(r["expected_datetime"])
    assert requested.utcoffset() is not None and expected > requested  # ISO 8601 with the offset; the deadline
    assert r["description"] == "垃圾堆在路边" and 113 < r["long"] < 115
    get = lambda **p: requests.get(  # noqa: E731
        f"{base_url}/open311/v2/requests.json", params={"api_key": key, **p}, timeout=30
    )
    assert rid in {x["service_request_id"] for x in get(status="open").json()}
    assert rid not in {x["service_request_id"] for x in get(status="closed").json()}
    assert all(x["status"] == "closed" for x in get(status="closed").json())
    assert rid not in {x["service_request_id"] for x in get(service_code="0502").json()}
    assert [x["service_request_id"] for x in get(service_request_id=f"{rid},999999999").json()] == [rid]
    assert len(get(page_size="3").json()) == 3
    page1, page2 = get(page_size="3").json(), get(page_size="3", page="2").json()
    assert not {x["service_request_id"] for x in page1} & {x["service_request_id"] for x in page2}
    old = get(end_date="2000-01-31T00:00:00Z").json()
    assert old == []
    assert get(jurisdiction_id=HAIDIAN).json() == []  # the other town: nothing of this client's
    for bad in ({"status": "pending"}, {"start_date": "yesterday"}, {"page_size": "100000"}, {"jurisdiction_id": "9"}):
        res = get(**bad)
        assert res.status_code == 400, bad
        valid("errors.json", res.json())


def test_post_errors(base_url, interop_keys, interop_engine):
    key = interop_keys["longgang"]
    lon, lat = _point_in(interop_engine, LONGGANG)
    cases = [
        ({"service_code": "0101", "lat": str(lat), "long": str(lon)}, 403, None),  # no api_key
        ({"api_key": key, "service_code": "9999", "lat": str(lat), "long": str(lon)}, 400, "service_code"),
        ({"api_key": key, "service_code": "0101"}, 400, "location"),
        ({"api_key": key, "service_code": "0101", "lat": "91", "long": str(lon)}, 400, "lat"),
        ({"api_key": key, "service_code": "0101", "lat": str(lat)}, 400, "long"),
        (
            {"api_key": key, "service_code": "0101", "lat": str(lat), "long": str(lon), "media_url": "javascript:x"},
            400,
            "media_url",
        ),  # fmt: skip
        ({"api_key": interop_keys["bare"][:-3] + "abc", "service_code": "0101", "lat": "1", "long": "1"}, 403, None),
        (
            {"api_key": key, "service_code": "0101", "lat": str(lat), "long": str(lon), "jurisdiction_id": HAIDIAN},
            400,
            "outside",
        ),  # fmt: skip
    ]
    with interop_engine.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM report")).scalar()
    for form, status, word in cases:
        res = requests.post(f"{base_url}/open311/v2/requests.json", data=form, timeout=30)
        assert res.status_code == status, (form, res.text)
        valid("errors.json", res.json())
        assert word is None or word in res.json()[0]["description"]
    xml = requests.post(f"{base_url}/open311/v2/requests.xml", data={"api_key": key, "service_code": "x"}, timeout=30)
    assert xml.status_code == 400 and "<errors><error><code>400</code>" in xml.text
    with interop_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM report")).scalar() == before  # nothing half-made


def test_service_definition_and_attributes(base_url, interop_keys, interop_engine):
    attributes = [
        {"code": "vehicle", "datatype": "singlevaluelist", "required": True, "description": "车辆类型", "order": 1,
         "values": [{"key": "car", "name": "小汽车"}, {"key": "ebike", "name": "电动车"}]},
        {"code": "plates", "datatype": "number", "required": False, "description": "车辆数", "order": 2},
    ]  # fmt: skip
    with interop_engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE category SET attributes = CAST(:a AS jsonb), keywords = '停车, parking' WHERE code = '0502'"
            ),
            {"a": json.dumps(attributes, ensure_ascii=False)},
        )
    services = {s["service_code"]: s for s in requests.get(f"{base_url}/open311/v2/services.json", timeout=30).json()}
    assert services["0502"]["metadata"] is True and services["0502"]["keywords"] == "停车, parking"
    assert services["0101"]["metadata"] is False
    definition = requests.get(f"{base_url}/open311/v2/services/0502.json", timeout=30)
    valid("service-definition.json", definition.json())
    assert [a["code"] for a in definition.json()["attributes"]] == ["vehicle", "plates"]
    assert requests.get(f"{base_url}/open311/v2/services/0101.json", timeout=30).status_code == 404
    xml = xmltodict.parse(requests.get(f"{base_url}/open311/v2/services/0502.xml", timeout=30).content)
    assert xml["service_definition"]["service_code"] == "0502"
    lon, lat = _point_in(interop_engine, LONGGANG)
    key = interop_keys["longgang"]
    form = {"service_code": "0502", "lat": str(lat), "long": str(lon)}
    missing = _post(base_url, key, **form)
    assert missing.status_code == 400 and "attribute[vehicle] is required" in missing.json()[0]["description"]
    wrong = _post(base_url, key, **form, **{"attribute[vehicle]": "bus"})
    assert wrong.status_code == 400 and "car" in wrong.json()[0]["description"]
    good = _post(base_url, key, **form, **{"attribute[vehicle]": "ebike", "attribute[plates]": "2"})
    assert good.status_code == 201, good.text
    with interop_engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT attributes FROM report WHERE id = :i"), {"i": int(good.json()[0]["service_request_id"])}
        ).scalar()
    assert stored == {"vehicle": "ebike", "plates": 2.0}
