"""Open311 and OGC API errors say their description in Chinese when the request asks for it (Accept-Language:
zh), in English otherwise; the specifications' fields and codes stay as the standards write them (issue 21)."""

from __future__ import annotations

import re

import requests

from tests.interop.test_open311 import valid

CJK = re.compile(r"[\u4e00-\u9fff]")
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"}


def _open311(base_url, key, headers, **form):
    return requests.post(f"{base_url}/open311/v2/requests.json", data={"api_key": key, **form}, headers=headers,
                         timeout=30)  # fmt: skip


def test_open311_errors_in_the_requests_language(base_url, interop_keys):
    key = interop_keys["longgang"]
    zh = _open311(base_url, key, ZH, service_code="0101", lat="22.7")
    assert zh.status_code == 400
    valid("errors.json", zh.json())  # still the specification's [{code, description}]
    assert zh.json() == [{"code": 400, "description": "lat 和 long 必须同时给出"}]
    en = _open311(base_url, key, EN, service_code="0101", lat="22.7")
    assert en.json() == [{"code": 400, "description": "lat and long go together"}]
    plain = _open311(base_url, key, {}, service_code="0101", lat="22.7")  # no Accept-Language: English, as before
    assert plain.json()[0]["description"] == "lat and long go together"
    # a value the client sent is quoted as sent, inside the Chinese sentence
    bad = _open311(base_url, key, ZH, service_code="0101", lat="abc", long="114")
    assert bad.json()[0]["description"] == "lat 必须是数字，而不是 'abc'"
    # XML errors, a missing key (401) and an unknown request (404) too
    xml = requests.post(f"{base_url}/open311/v2/requests.xml", data={"api_key": key}, headers=ZH, timeout=30)
    assert xml.status_code == 400 and "<description>缺少 service_code</description>" in xml.text
    anon = requests.post(f"{base_url}/open311/v2/requests.json", data={"service_code": "0101"}, headers=ZH,
                         timeout=30)  # fmt: skip
    assert anon.status_code in (401, 403) and CJK.search(anon.json()[0]["description"]), anon.text
    missing = requests.get(f"{base_url}/open311/v2/requests/999999999.json", params={"api_key": key}, headers=ZH,
                           timeout=30)  # fmt: skip
    assert missing.status_code == 404 and missing.json()[0]["description"] == "没有服务请求 999999999"


def test_ogc_errors_in_the_requests_language(base_url, interop_keys):
    auth = {"Authorization": f"Bearer {interop_keys['manager']}"}
    url = f"{base_url}/ogc/collections/segments/items"
    zh = requests.get(url, params={"bbox": "1,2,3"}, headers={**auth, **ZH}, timeout=60)
    assert zh.status_code == 400
    assert zh.json() == {
        "code": "InvalidParameterValue",
        "description": "bbox：须为四个数：minx,miny,maxx,maxy（含高程时为六个）",
    }
    en = requests.get(url, params={"bbox": "1,2,3"}, headers={**auth, **EN}, timeout=60)
    assert en.json() == {
        "code": "InvalidParameterValue",
        "description": "bbox: four numbers: minx,miny,maxx,maxy (six with heights)",
    }
    unknown = requests.get(url, params={"colour": "red"}, headers={**auth, **ZH}, timeout=60)
    assert unknown.status_code == 400 and unknown.json()["description"].startswith(
        "未知的查询参数 'colour'；允许的参数："
    )
    nothing = requests.get(f"{base_url}/ogc/collections/nope", headers={**auth, **ZH}, timeout=60)
    assert nothing.status_code == 404 and nothing.json()["code"] == "NotFound"
    assert nothing.json()["description"].startswith("没有集合 'nope'；现有集合：")
    # without a key: 401 in the standard's shape too
    anon = requests.get(url, headers=ZH, timeout=60)
    assert anon.status_code == 401 and anon.json()["code"] == "Unauthorized" and CJK.search(anon.json()["description"])
    assert requests.get(url, headers=EN, timeout=60).json()["description"].startswith("send a valid API key")
    refused = requests.get(url, headers={"Authorization": "Bearer gg_nope_nope", **EN}, timeout=60)
    assert refused.status_code == 401 and refused.json()["code"] == "Unauthorized"
    # ?lang= (the API's own parameter) chooses too
    asked = requests.get(url, params={"bbox": "1,2,3", "lang": "en"}, headers={**auth, **ZH}, timeout=60)
    assert asked.json()["description"].startswith("bbox: four numbers")


def test_a_digit_int_refuses_is_a_400_not_a_500(base_url, interop_keys):
    """service_request_id=¹ (a superscript: str.isdigit() says yes, int() says no) was a 500 (found by the fuzz
    test); it is a 400 in the specification's error list, in the request's language."""
    res = requests.get(f"{base_url}/open311/v2/requests.xml", params={"service_request_id": "¹",
                       "api_key": interop_keys["longgang"]}, headers=ZH, timeout=30)  # fmt: skip
    assert (
        res.status_code == 400
        and "<description>service_request_id 必须是请求编号，而不是 '¹'</description>" in res.text
    )
    auth = {"Authorization": f"Bearer {interop_keys['manager']}"}
    item = requests.get(f"{base_url}/ogc/collections/segments/items/¹", headers={**auth, **ZH}, timeout=30)
    assert item.status_code == 404 and item.json()["code"] == "NotFound"
