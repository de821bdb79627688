"""A planner's edit as the ``/plan`` editor posts it, checked at the boundary (no database here).

An edit is a dict (see :func:`parse_edit`)::

    {"layer": "cell" | "segment",
     "action": "create" | "reshape" | "split" | "merge" | "delete" | "restore",
     "town": "110108001",              # create: the town drawn in
     "unit_ids": [12, 13],             # the units edited (merge: two or more)
     "revisions": {"12": 3, "13": 1},  # the revision of each as the planner loaded it
     "geometry": {GeoJSON polygon},    # create, reshape
     "line": {GeoJSON line},           # split
     "version_id": 77,                 # restore
     "overlap": "refuse" | "clip",     # what to do with overlaps and parts outside
     "saved_by": "王工", "reason": "..."}

It also holds the two ways a save is turned down: :class:`EditRefused` (the drawing, with its check) and
:class:`EditConflict` (a unit changed since the planner loaded it).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from gisgrid.errors import GisgridError, InputError
from gisgrid.grid.edit import (
    OVERLAP_MODES,
    EditCheck,
)

LOGGER = logging.getLogger(__name__)


ACTIONS = ("create", "reshape", "split", "merge", "delete", "restore")


SEGMENT_ACTIONS = ("reshape", "split", "merge", "restore")


MAX_TEXT = 500
#: The layers the editor edits: cells and segment areas.
LAYERS = ("cell", "segment")


class EditRefused(InputError):
    """The edit cannot be saved as drawn; ``check`` says why and where."""

    http_status_code = 422

    def __init__(self, check: EditCheck):
        self.check = check
        super().__init__("; ".join(p.message for p in check.problems) or "edit refused")


class EditConflict(GisgridError):
    """A unit changed since the planner loaded it; ``current`` describes it now."""

    http_status_code = 409

    def __init__(self, msg: str, current: list[dict]):
        self.current = current
        super().__init__(msg)


@dataclass
class PlanEdit:
    """A parsed edit (see the module docstring)."""

    layer: str
    action: str
    unit_ids: list[int] = field(default_factory=list)
    revisions: dict[int, int] = field(default_factory=dict)
    town: str | None = None
    geometry: BaseGeometry | None = None
    line: BaseGeometry | None = None
    version_id: int | None = None
    overlap: str = "refuse"
    saved_by: str = ""
    reason: str = ""


def _geometry(value, what: str, problems: list[str]) -> BaseGeometry | None:
    if value in (None, "", {}):
        return None
    try:
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, dict) and value.get("type") == "Feature":
            value = value.get("geometry")
        return shape(value)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        problems.append(f"{what} is not a GeoJSON geometry ({type(exc).__name__}: {exc})")
        return None


def _choice(value):
    """A value that must be one of some names: text as it is, anything else (a list, an object) as its JSON-ish
    text, so that it is refused by name like any unknown choice instead of failing a look-up."""
    return value if value is None or isinstance(value, str) else repr(value)


def parse_edit(payload: dict, *, require_author: bool = True) -> PlanEdit:
    """Validate the editor's request; all problems at once as one :class:`InputError`."""
    if not isinstance(payload, dict):
        raise InputError("the edit must be a JSON object")
    problems = []
    layer = _choice(payload.get("layer", "cell"))
    action = _choice(payload.get("action"))
    if layer not in LAYERS:
        problems.append(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")
    if action not in ACTIONS:
        problems.append(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    elif layer == "segment" and action not in SEGMENT_ACTIONS:
        problems.append(
            f"segments cannot be {action}d in the editor: they are cut from street centerlines "
            f"(`gisgrid segments build`), so a segment is reshaped, split, merged or restored instead"
        )
    try:
        unit_ids = [int(i) for i in payload.get("unit_ids") or []]
        revisions = {int(k): int(v) for k, v in (payload.get("revisions") or {}).items()}
    except (TypeError, ValueError, AttributeError):
        raise InputError("unit_ids must be a list of integers and revisions an object of integers") from None
    overlap = _choice(payload.get("overlap", "refuse"))
    if overlap not in OVERLAP_MODES:
        problems.append(f"overlap must be one of {', '.join(OVERLAP_MODES)}, got {overlap!r}")
    saved_by = str(payload.get("saved_by") or "").strip()[:MAX_TEXT]
    reason = str(payload.get("reason") or "").strip()[:MAX_TEXT]
    if require_author and not saved_by:
        problems.append("say who you are (saved_by): every version records who saved it")
    need_units = {"create": 0, "reshape": 1, "split": 1, "merge": 2, "delete": 1, "restore": 1}.get(action)
    if need_units is not None:
        if action == "merge" and len(unit_ids) < 2:
            problems.append("select at least two units to merge")
        elif action != "merge" and len(unit_ids) != need_units:
            problems.append(
                f"{action} takes {need_units or 'no'} unit id{'s' if need_units != 1 else ''}, got {len(unit_ids)}"
            )
        if action == "create" and not str(payload.get("town") or "").strip():
            problems.append("create needs the town code the cell is drawn in")
        missing = [i for i in unit_ids if i not in revisions and action != "restore"]
        if missing:
            problems.append(f"revision as loaded is required for unit(s) {missing}")
    version_id = payload.get("version_id")
    if action == "restore":
        try:
            version_id = int(version_id)
        except (TypeError, ValueError):
            problems.append("restore needs the version_id to restore")
        if not reason:  # a restore undoes someone's saved work: the history says why
            problems.append("a restore needs a reason (why the earlier version comes back; kept in the history)")
    edit = PlanEdit(
        layer=layer,
        action=action,
        unit_ids=unit_ids,
        revisions=revisions,
        town=str(payload.get("town") or "").strip() or None,
        overlap=overlap,
        saved_by=saved_by,
        reason=reason,
        version_id=version_id if action == "restore" else None,
    )
    if action in ("create", "reshape"):
        edit.geometry = _geometry(payload.get("geometry"), "geometry", problems)
    if action == "split":
        edit.line = _geometry(payload.get("line"), "line", problems)
    if problems:
        raise InputError("; ".join(problems))
    return edit
