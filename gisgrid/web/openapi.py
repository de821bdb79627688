"""The OpenAPI 3 description of gisgrid's JSON endpoints, served at ``/api/openapi.json``.

It describes what each endpoint takes and answers, so that other systems can
call them and a fuzzer (schemathesis, in the tests) can check that no request,
however malformed, gets a 500.  Every error answer is JSON ``{error, detail}``
(``detail`` in the caller's language).
"""

from __future__ import annotations

import copy

from gisgrid import __version__

_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "string", "description": "why, in the page's language (zh-CN unless ?lang=en)"},
        "status": {"type": "string", "description": "a refused step: the case's state (the same in every language)"},
        "action": {"type": "string", "description": "a refused step: the step asked for"},
        "version": {"type": "integer", "description": "a stale version: the case's version now"},
        "code": {"type": "string", "description": "a refused point or photo: what is wrong with it"},
    },
}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    reasons = {
        400: "The request cannot be used; detail says why",
        401: "Not signed in",
        403: "The account may not do this",
        404: "Not found, or not within the account's sight",
        409: "The edit conflicts with the stored data",
        413: "The body is too large",
        422: "The edit is refused; detail says why",
        503: "The database is not answering",
    }
    return {str(code): _json({"$ref": "#/components/schemas/Error"}, reasons[code]) for code in codes}


_COORDINATE = {"oneOf": [{"type": "number"}, {"type": "string"}]}
_PLAN_EDIT = {
    "type": "object",
    "properties": {
        "layer": {"type": "string", "example": "cell"},
        "action": {"type": "string", "example": "create"},
        "unit_ids": {"type": "array", "items": {"type": "integer"}},
        "revisions": {"type": "object", "additionalProperties": {"type": "integer"}},
        "town": {"type": "string"},
        "overlap": {"type": "string", "example": "refuse"},
        "geometry": {"type": "object"},
        "line": {"type": "object"},
        "version_id": {"type": "integer"},
        "reason": {"type": "string"},
        "saved_by": {"type": "string"},
    },
}

SPEC: dict = {
    "openapi": "3.0.3",
    "info": {
        "title": "gisgrid",
        "version": __version__,
        "description": (
            "Street-chief grid management: reports routed to the one owner of their place. "
            "Every endpoint but /healthz, this description, the Open311 discovery and services and the OGC "
            "landing and conformance pages needs a signed-in session (the `session` cookie of /auth/login; "
            "for POST its CSRF token in the X-CSRFToken header) or an API client's key "
            "(`Authorization: Bearer gg_…`; Open311 also takes `api_key`). Open311 GeoReport v2 is at "
            "/open311/v2/, OGC API - Features (Part 1 and 2) at /ogc/."
        ),
    },
    "paths": {
        "/healthz": {
            "get": {
                "summary": "Whether the database answers",
                "responses": {
                    "200": _json({"type": "object", "properties": {"status": {"type": "string"}}}, "Healthy"),
                    "503": _json({"type": "object"}, "The database is not answering"),
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "summary": "This description",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3 document")},
            }
        },
        "/api/assign": {
            "post": {
                "summary": "Route one point to its owner, with the explanation",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["lon", "lat"],
                                "properties": {
                                    "lon": _COORDINATE,
                                    "lat": _COORDINATE,
                                    "crs": {"type": "string", "example": "EPSG:4326"},
                                    "category": {"type": "string", "nullable": True, "example": "0101"},
                                    "date": {"type": "string", "example": "2026-07-01"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json({"type": "object"}, "The owner, the rule that chose it and why"),
                    **_errors(400, 401, 403, 413, 503),
                },
            }
        },
        "/api/plan/units": {
            "get": {
                "summary": "The cells (or segment areas) of a town, as GeoJSON",
                "parameters": [
                    {"name": "town", "in": "query", "required": True, "schema": {"type": "string"}},
                    {"name": "layer", "in": "query", "schema": {"type": "string", "example": "cell"}},
                ],
                "responses": {
                    "200": _json({"type": "object"}, "units (a FeatureCollection) and removed cells"),
                    **_errors(400, 401, 403, 404, 503),
                },
            }
        },
        "/api/plan/check": {
            "post": {
                "summary": "What saving an edit of the plan would do (nothing is written)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _PLAN_EDIT}}},
                "responses": {
                    "200": _json({"type": "object"}, "The check"),
                    **_errors(400, 401, 403, 404, 413, 503),
                },
            }
        },
        "/api/plan/save": {
            "post": {
                "summary": "Save an edit of the plan (a new version of each unit it changes)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _PLAN_EDIT}}},
                "responses": {
                    "200": _json({"type": "object"}, "The saved versions"),
                    **_errors(400, 401, 403, 404, 409, 413, 422, 503),
                },
            }
        },
        "/api/plan/history": {
            "get": {
                "summary": "Every saved version of a unit, newest first",
                "parameters": [
                    {"name": "id", "in": "query", "required": True, "schema": {"type": "string"}},
                    {"name": "layer", "in": "query", "schema": {"type": "string", "example": "cell"}},
                ],
                "responses": {"200": _json({"type": "object"}, "versions"), **_errors(400, 401, 403, 404, 503)},
            }
        },
        "/api/plan/frontages": {
            "get": {
                "summary": "The frontages of a town's 门前三包 units, as GeoJSON (the /plan frontage layer)",
                "parameters": [{"name": "town", "in": "query", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _json({"type": "object"}, "units: a FeatureCollection of frontages with id and revision"),
                    **_errors(400, 401, 403, 404, 503),
                },
            }
        },
        "/api/plan/frontage": {
            "post": {
                "summary": "Save one unit's frontage, clipped to its segment's area and off its neighbours'",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["id", "revision", "geometry"],
                                "properties": {
                                    "id": {"type": "integer"},
                                    "revision": {"type": "integer"},
                                    "geometry": {"type": "object", "description": "GeoJSON Polygon, EPSG:4326"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json({"type": "object"}, "The unit's new revision"),
                    **_errors(400, 401, 403, 404, 409, 413, 503),
                },
            }
        },
        "/api/cases": {
            "post": {
                "summary": "Take in a case (a report) at a point or a written address",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "lon": _COORDINATE,
                                    "lat": _COORDINATE,
                                    "crs": {"type": "string", "example": "EPSG:4326"},
                                    "address": {"type": "string"},
                                    "category": {"type": "string", "example": "0101"},
                                    "description": {"type": "string"},
                                    "client_id": {"type": "string"},
                                    "reported_at": {"type": "string", "example": "2026-11-01T08:00:00+08:00"},
                                    "source": {"type": "string", "example": "api"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json({"type": "object"}, "The new case, its routing and possible duplicates"),
                    "200": _json({"type": "object"}, "The case already taken in with this client_id"),
                    **_errors(400, 401, 403, 413, 503),
                },
            }
        },
        "/api/cases/{case_id}": {
            "get": {
                "summary": "A case with its events and the steps the account may take",
                "parameters": [{"name": "case_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {"200": _json({"type": "object"}, "The case"), **_errors(401, 403, 404, 503)},
            }
        },
        "/api/cases/{case_id}/{action}": {
            "post": {
                "summary": "Take a step of the case workflow (accept, dispatch, handle, verify, close …)",
                "parameters": [
                    {"name": "case_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                    {
                        "name": "action",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "example": "accept"},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "version": {"type": "integer"},
                                    "note": {"type": "string"},
                                    "reason": {"type": "string"},
                                    "owner": {"type": "string"},
                                    "hours": {"type": "number"},
                                    "into": {"type": "integer"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json({"type": "object"}, "The case after the step"),
                    **_errors(400, 401, 403, 404, 409, 413, 503),
                },
            }
        },
        "/api/cases/geocode": {
            "get": {
                "summary": "A written address → a point (EPSG:4326), for the intake form",
                "parameters": [{"name": "address", "in": "query", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json({"type": "object"}, "The point"), **_errors(400, 401, 403, 404, 503)},
            }
        },
        "/api/inspections/checkin": {
            "post": {
                "summary": "\"Patrolled here\": a patrol member's or inspector's check-in at a point (patrol coverage)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["lon", "lat"],
                                "properties": {
                                    "lon": _COORDINATE,
                                    "lat": _COORDINATE,
                                    "crs": {"type": "string", "examples": ["EPSG:4326", "gcj02"]},
                                    "client_id": {"type": "string", "description": "idempotency key (a UUID fits)"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json({"type": "object"}, "Kept: its id, the segment and cell it lies in"),
                    "200": _json({"type": "object"}, "Sent before (same client_id): the kept one"),
                    **_errors(400, 401, 403, 413, 503),
                },
            }
        },
        "/api/search": {
            "get": {
                "summary": "The map search box: streets, segments, cells, people and cases the account sees, and an "
                "address the geocoder finds, each with its GeoJSON geometry and extent (EPSG:4326)",
                "parameters": [{"name": "q", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": _json({"type": "object"}, "results"), **_errors(400, 401, 503)},
            }
        },
        "/api/basemap/context": {
            "get": {
                "summary": "The light basemap of a map view: jurisdiction boundaries and streets, GeoJSON (EPSG:4326)",
                "parameters": [
                    {"name": "bbox", "in": "query", "required": True, "schema": {"type": "string"}},
                    {"name": "zoom", "in": "query", "required": True, "schema": {"type": "integer"}},
                ],
                "responses": {"200": _json({"type": "object"}, "boundaries and streets"), **_errors(400, 401, 503)},
            }
        },
        "/owners/people.json": {
            "get": {
                "summary": "People and departments whose name, id or phone matches",
                "parameters": [{"name": "q", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": _json({"type": "object"}, "people"), **_errors(400, 401, 403, 503)},
            }
        },
        "/jobs/{job}.json": {
            "get": {
                "summary": "A background job's state, for polling",
                "parameters": [{"name": "job", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json({"type": "object"}, "The job"), **_errors(400, 401, 404, 503)},
            }
        },
        "/export/{layer}.geojson": {
            "get": {
                "summary": "A layer as RFC 7946 GeoJSON (the rows the account sees)",
                "parameters": [
                    {
                        "name": "layer",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "example": "jurisdictions"},
                    }
                ],
                "responses": {
                    "200": {"description": "GeoJSON", "content": {"application/geo+json": {"schema": {}}}},
                    **_errors(400, 401, 403, 404, 503),
                },
            }
        },
    },
    "components": {"schemas": {"Error": _ERROR}},
}


# --- other systems: Open311 GeoReport v2 and OGC API - Features (issue 23) ---------------------------------
_FORMAT = {"name": "format", "in": "path", "required": True, "schema": {"type": "string", "enum": ["json", "xml"]}}
_JURISDICTION = {"name": "jurisdiction_id", "in": "query", "schema": {"type": "string"}}
_API_KEY = {"name": "api_key", "in": "query", "schema": {"type": "string"}, "description": "the client's API key"}
_OPEN311_ERROR = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}


def _open311(description: str, *codes: int) -> dict:
    answers = {
        "200": {
            "description": description,
            "content": {"application/json": {"schema": {}}, "text/xml": {"schema": {"type": "string"}}},
        }
    }
    for code in codes:
        answers[str(code)] = {
            "description": {400: "Bad parameter", 403: "No valid api_key, or not allowed", 404: "Not found"}[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Open311Errors"}}},
        }
    return answers


_OPEN311_PATHS = {
    "/open311/v2/discovery.{format}": {
        "get": {
            "summary": "Open311 discovery",
            "tags": ["Open311"],
            "parameters": [_FORMAT],
            "responses": _open311("The endpoints", 400),
        }  # fmt: skip
    },
    "/open311/v2/services.{format}": {
        "get": {
            "summary": "The services (problem categories) with group and keywords",
            "tags": ["Open311"],
            "parameters": [_FORMAT, _JURISDICTION],
            "responses": _open311("The services", 400),
        }  # fmt: skip
    },
    "/open311/v2/services/{service_code}.{format}": {
        "get": {
            "summary": "A service's definition: its attributes",
            "tags": ["Open311"],
            "parameters": [
                {"name": "service_code", "in": "path", "required": True, "schema": {"type": "string"}},
                _FORMAT,
                _JURISDICTION,
            ],
            "responses": _open311("The definition", 400, 404),
        }
    },
    "/open311/v2/requests.{format}": {
        "get": {
            "summary": "Service requests (cases) within the client's sight: the last 90 days or 1,000 by default",
            "tags": ["Open311"],
            "parameters": [
                _FORMAT,
                _JURISDICTION,
                _API_KEY,
                *(
                    {"name": n, "in": "query", "schema": {"type": "string"}}
                    for n in ("service_request_id", "service_code", "start_date", "end_date", "status")
                ),
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
            ],
            "responses": _open311("The requests", 400, 403),
        },
        "post": {
            "summary": "Report a problem: a new case, routed to its owner, with its deadline",
            "tags": ["Open311"],
            "parameters": [_FORMAT],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["api_key", "service_code"],
                            "properties": {
                                "api_key": {"type": "string"},
                                "jurisdiction_id": {"type": "string"},
                                "service_code": {"type": "string"},
                                "lat": {"type": "number"},
                                "long": {"type": "number"},
                                "address_string": {"type": "string"},
                                "description": {"type": "string"},
                                "media_url": {"type": "string"},
                            },
                            "additionalProperties": {"type": "string"},
                        }
                    }
                },
            },
            "responses": {
                **_open311("The new request's id and token", 400, 403),
                "201": {"description": "Created", "content": {"application/json": {"schema": {}}}},
            },
        },
    },
    "/open311/v2/requests/{service_request_id}.{format}": {
        "get": {
            "summary": "One service request",
            "tags": ["Open311"],
            "parameters": [
                {"name": "service_request_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                _FORMAT,
                _JURISDICTION,
                _API_KEY,
            ],
            "responses": _open311("The request", 400, 403, 404),
        }
    },
    "/open311/v2/tokens/{token}.{format}": {
        "get": {
            "summary": "The request id of a token",
            "tags": ["Open311"],
            "parameters": [
                {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}},
                _FORMAT,
                _API_KEY,
            ],
            "responses": _open311("The request id", 400, 403, 404),
        }
    },
}

_OGC_F = {"name": "f", "in": "query", "schema": {"type": "string", "enum": ["json", "html"]}}
_OGC_ERROR = {
    "type": "object",
    "required": ["code", "description"],
    "properties": {"code": {"type": "string"}, "description": {"type": "string"}},
}


def _ogc(description: str, media: str = "application/json", *codes: int) -> dict:
    answers = {"200": {"description": description, "content": {media: {"schema": {}}, "text/html": {"schema": {}}}}}
    for code in codes:
        answers[str(code)] = {
            "description": {400: "A parameter the API does not know or cannot use", 404: "Not found"}[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OgcError"}}},
        }
    return answers


def _ogc_paths() -> dict:
    from gisgrid.interop.features import COLLECTIONS, MAX_LIMIT

    cid = {
        "name": "collectionId",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": list(COLLECTIONS)},
    }
    crs = {"name": "crs", "in": "query", "schema": {"type": "string", "format": "uri"}}
    get = lambda summary, params, responses: {  # noqa: E731
        "get": {"summary": summary, "tags": ["OGC API - Features"], "parameters": params, "responses": responses}
    }
    return {
        "/ogc/": get("The landing page", [_OGC_F], _ogc("Links to the API", "application/json", 400)),
        "/ogc/conformance": get("The conformance classes", [_OGC_F], _ogc("conformsTo", "application/json", 400)),
        "/ogc/collections": get("The collections", [_OGC_F], _ogc("The collections", "application/json", 400)),
        "/ogc/collections/{collectionId}": get(
            "A collection: its extent (CRS84) and CRSs",
            [cid, _OGC_F],
            _ogc("The collection", "application/json", 400, 404),
        ),
        "/ogc/collections/{collectionId}/items": get(
            "The features of a collection, within the caller's sight",
            [
                cid,
                _OGC_F,
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 10},
                },  # fmt: skip
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {
                    "name": "bbox",
                    "in": "query",
                    "style": "form",
                    "explode": False,
                    "schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
                },
                {"name": "bbox-crs", "in": "query", "schema": {"type": "string", "format": "uri"}},
                crs,
                {"name": "datetime", "in": "query", "schema": {"type": "string"}},
            ],
            _ogc("A FeatureCollection (GeoJSON)", "application/geo+json", 400, 404),
        ),
        "/ogc/collections/{collectionId}/items/{featureId}": get(
            "One feature",
            [cid, {"name": "featureId", "in": "path", "required": True, "schema": {"type": "string"}}, _OGC_F, crs],
            _ogc("A Feature (GeoJSON)", "application/geo+json", 400, 404),
        ),
    }


SPEC["paths"]["/api"] = {
    "get": {
        "summary": "This description (OpenAPI 3.0), as OGC API's service-desc",
        "responses": {
            "200": {
                "description": "OpenAPI 3 document",
                "content": {"application/vnd.oai.openapi+json;version=3.0": {"schema": {}}},
            }
        },
    }
}
SPEC["paths"].update(_OPEN311_PATHS)
SPEC["paths"].update(_ogc_paths())
SPEC["components"]["schemas"]["Open311Errors"] = _OPEN311_ERROR
SPEC["components"]["schemas"]["OgcError"] = _OGC_ERROR
SPEC["components"]["securitySchemes"] = {
    "apiKey": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer gg_… (an API client's key)"},
    "session": {"type": "apiKey", "in": "cookie", "name": "session", "description": "the cookie of /auth/login"},
    "open311Key": {"type": "apiKey", "in": "query", "name": "api_key", "description": "Open311's api_key"},
}


def openapi_spec() -> dict:
    """A copy of :data:`SPEC`."""
    return copy.deepcopy(SPEC)


__all__ = ["SPEC", "openapi_spec"]
