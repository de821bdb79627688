"""The OpenAPI 3 document at /api (and /api/openapi.json, as before): valid by openapi-spec-validator, and
covering the JSON endpoints other systems call — assign, cases, Open311, OGC API – Features."""

from __future__ import annotations

import requests
from openapi_spec_validator import validate


def test_the_document_at_api_is_valid_and_covers_the_endpoints(base_url):
    res = requests.get(f"{base_url}/api", timeout=30)  # public: it holds no data
    assert res.status_code == 200 and res.headers["Content-Type"].startswith("application/vnd.oai.openapi+json")
    spec = res.json()
    validate(spec)
    assert spec["openapi"].startswith("3.0")
    assert requests.get(f"{base_url}/api/openapi.json", timeout=30).json() == spec
    paths = set(spec["paths"])
    assert {"/api/assign", "/api/cases", "/api/cases/{case_id}"} <= paths
    assert {
        "/open311/v2/discovery.{format}",
        "/open311/v2/services.{format}",
        "/open311/v2/services/{service_code}.{format}",
        "/open311/v2/requests.{format}",
        "/open311/v2/requests/{service_request_id}.{format}",
        "/open311/v2/tokens/{token}.{format}",
    } <= paths
    assert set(spec["paths"]["/open311/v2/requests.{format}"]) == {"get", "post"}
    assert {
        "/ogc/",
        "/ogc/conformance",
        "/ogc/collections",
        "/ogc/collections/{collectionId}",
        "/ogc/collections/{collectionId}/items",
        "/ogc/collections/{collectionId}/items/{featureId}",
    } <= paths
    landing = requests.get(f"{base_url}/ogc/", timeout=30).json()
    desc = next(link for link in landing["links"] if link["rel"] == "service-desc")
    assert desc["href"] == f"{base_url}/api" and "openapi" in desc["type"]
