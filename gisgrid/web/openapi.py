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
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
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
        "layer": {"type": "string", "examples": ["cell", "segment"]},
        "action": {"type": "string", "examples": ["create", "reshape", "split", "merge", "delete", "restore"]},
        "unit_ids": {"type": "array", "items": {"type": "integer"}},
        "revisions": {"type": "object", "additionalProperties": {"type": "integer"}},
        "town": {"type": "string"},
        "overlap": {"type": "string", "examples": ["refuse", "trim"]},
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
            "Every endpoint but /healthz and this description needs a signed-in session (the `session` "
            "cookie of /auth/login) and, for POST, its CSRF token in the X-CSRFToken header."
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
                                    "crs": {"type": "string", "examples": ["EPSG:4326", "gcj02", "bd09", "EPSG:4547"]},
                                    "category": {"type": "string", "nullable": True, "examples": ["0101"]},
                                    "date": {"type": "string", "examples": ["2026-07-01"]},
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
                    {"name": "layer", "in": "query", "schema": {"type": "string", "examples": ["cell", "segment"]}},
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
                    {"name": "layer", "in": "query", "schema": {"type": "string", "examples": ["cell", "segment"]}},
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
                                    "crs": {"type": "string", "examples": ["EPSG:4326", "gcj02"]},
                                    "address": {"type": "string"},
                                    "category": {"type": "string", "examples": ["0101"]},
                                    "description": {"type": "string"},
                                    "client_id": {"type": "string"},
                                    "reported_at": {"type": "string", "examples": ["2026-11-01T08:00:00+08:00"]},
                                    "source": {"type": "string", "examples": ["api", "phone"]},
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
                        "schema": {"type": "string", "examples": ["accept", "dispatch", "handle", "close"]},
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
                        "schema": {"type": "string", "examples": ["jurisdictions", "segments", "cells", "reports"]},
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


def openapi_spec() -> dict:
    """A copy of :data:`SPEC`."""
    return copy.deepcopy(SPEC)


__all__ = ["SPEC", "openapi_spec"]
