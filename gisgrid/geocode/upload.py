"""A clerk's geocoding upload: one folder ``<var_dir>/geocode/<id>/`` per upload.

The folder holds the uploaded file (``input.csv`` or ``input.xlsx``),
``job.json`` (original name, address column, sheet, the category and date
columns used for routing, and, once read, the input's number columns, written
back to XLSX as numbers) and, when geocoding is over, ``result.csv`` (every
input row with the geocode and route columns).  ``result.csv`` appears whole
(written under another name, then renamed): its presence means "done".

The web page geocodes small uploads in the request; larger ones run as the
background job :data:`gisgrid.jobs.GEOCODE_UPLOAD` whose id is the folder's.
Both call :func:`geocode_upload`.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from gisgrid.config import Settings, TextLimits
from gisgrid.errors import InputError
from gisgrid.geocode.batch import read_table
from gisgrid.geocode.route import geocode_and_route, needs_review, output_names

LOGGER = logging.getLogger(__name__)

#: Accepted upload suffix -> the file name it is saved under.
UPLOAD_TYPES = {".csv": "input.csv", ".xlsx": "input.xlsx"}
RESULT_FILE = "result.csv"
#: Rows geocoded per step (progress is reported after each).
CHUNK_ROWS = 500


def _(text: str) -> str:
    """Marks a progress message for translation (the page translates it)."""
    return text


def upload_dir(settings: Settings, upload_id: str) -> Path:
    """``<var_dir>/geocode/<id>`` (not created; ``upload_id`` is checked by the caller)."""
    return Path(settings.var_dir) / "geocode" / upload_id


def save_upload(folder: Path, name: str, data: bytes, form: dict, *, user_id: int | None = None) -> dict:
    """Create ``folder`` with the uploaded bytes and ``job.json``; the metadata written.

    Parameters
    ----------
    folder : Path
        Must not exist yet.
    name : str
        The user's file name (its suffix, ``.csv`` or ``.xlsx``, picks the saved name).
    data : bytes
    form : dict
        ``column`` (required), ``sheet``, ``category``, ``date`` (empty for none).
    user_id : int, optional
        The account that uploads: only it (and admins) may open the job.
    """
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_TYPES:
        raise InputError(f"{name}: upload a .csv or .xlsx file")
    folder.mkdir(parents=True)
    (folder / UPLOAD_TYPES[suffix]).write_bytes(data)
    meta = {"name": name, "column": form["column"], **{k: form.get(k) or None for k in ("sheet", "category", "date")}}
    if user_id is not None:
        meta["user_id"] = user_id
    _write_meta(folder, meta)
    return meta


def read_meta(folder: Path) -> dict:
    """The upload's ``job.json``."""
    return json.loads((folder / "job.json").read_text(encoding="utf-8"))


def _write_meta(folder: Path, meta: dict) -> None:
    tmp = folder / "job.json.tmp"
    tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    tmp.replace(folder / "job.json")


def write_result(folder: Path, frame: pd.DataFrame) -> None:
    """Replace ``result.csv`` whole, through the one table writer (formula text neutralised, CR/LF quoted)."""
    from gisgrid.io import write_table

    tmp = folder / (RESULT_FILE + ".tmp")
    write_table(frame, tmp, kind="csv")
    tmp.replace(folder / RESULT_FILE)


def discard(folder: Path) -> None:
    """Remove an upload's folder (a failed upload keeps nothing)."""
    shutil.rmtree(folder, ignore_errors=True)


def _input_file(folder: Path) -> Path:
    for saved in UPLOAD_TYPES.values():
        if (folder / saved).is_file():
            return folder / saved
    raise InputError("the uploaded file is missing")


def geocode_upload(
    folder: Path,
    gazetteers,
    deployment,
    *,
    progress: Callable[..., None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    limits: TextLimits | None = None,
) -> dict:
    """Geocode and route the upload in ``folder`` into its ``result.csv``; counts for the summary.

    Parameters
    ----------
    folder : Path
        Made by :func:`save_upload`.
    gazetteers : gisgrid.geocode.store.AreaGazetteers
    deployment : gisgrid.routing.store.Deployment
    progress : callable, optional
        ``progress(percent, message, force=False, **fields)`` (:meth:`gisgrid.jobs.JobContext.progress`),
        called after each chunk.
    chunk_rows : int
        Rows per chunk (results do not depend on it: the chunks share one cache).
    limits : TextLimits, optional
        The longest address and cell read; a row over them fails with the reason.

    Returns
    -------
    dict
        ``rows``, ``with_owner`` and ``to_review``.

    Raises
    ------
    InputError
        The gazetteer is empty, or the file or a named column cannot be read
        (``ColumnNotFound``, ``SheetNotFound``, ``UnreadableTable`` say which).
    """
    if not len(gazetteers):
        raise InputError("There are no streets to geocode against: import streets (and address points) first.")
    report = progress or (lambda *_a, **_k: None)
    meta = read_meta(folder)
    report(2, _("reading the file"), force=True)
    frame = read_table(_input_file(folder), sheet=meta.get("sheet"), column=meta["column"])
    total = len(frame)
    caches: dict = {}
    parts = []
    for start in range(0, max(total, 1), chunk_rows):
        chunk = frame.iloc[start : start + chunk_rows]
        parts.append(
            geocode_and_route(
                chunk,
                meta["column"],
                gazetteers,
                deployment,
                category=meta.get("category"),
                date=meta.get("date"),
                caches=caches,
                limits=limits,
                malformed=frame.attrs["malformed"],
            )
        )
        done = min(start + chunk_rows, total)
        report(5 + 90 * done / max(total, 1), _("%(done)s of %(total)s rows geocoded"), done=done, total=total)
    result = pd.concat(parts) if len(parts) > 1 else parts[0]
    meta["number_columns"] = frame.attrs["number_columns"]
    _write_meta(folder, meta)
    write_result(folder, result)
    names = output_names(frame.columns)
    summary = {
        "rows": total,
        "with_owner": int(result[names["owner_name"]].astype(str).str.strip().ne("").sum()),
        "to_review": int(needs_review(result, names).sum()),
    }
    LOGGER.info("upload %s geocoded: %s", folder.name, summary)
    return summary


__all__ = [
    "CHUNK_ROWS",
    "RESULT_FILE",
    "UPLOAD_TYPES",
    "discard",
    "geocode_upload",
    "read_meta",
    "save_upload",
    "upload_dir",
    "write_result",
]
