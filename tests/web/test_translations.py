"""Every text the pages and the server put through gettext has a Chinese translation (zh-CN is the default)."""

from __future__ import annotations

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from gisgrid.config import PROJECT_ROOT

PO = PROJECT_ROOT / "gisgrid" / "translations" / "zh" / "LC_MESSAGES" / "messages.po"
METHODS = [("gisgrid/**.py", "python"), ("gisgrid/web/templates/**.html", "jinja2")]


def test_every_message_has_a_chinese_translation():
    with PO.open("rb") as f:
        catalog = read_po(f)
    found = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(PROJECT_ROOT), METHODS, keywords={"_": None, "gettext": None, "lazy_gettext": None, "N_": None}
    ):
        if filename.startswith((".venv", "tests")) or not isinstance(message, str) or not message:
            continue
        found.setdefault(message, f"{filename}:{lineno}")
    assert len(found) > 100
    missing = {m: where for m, where in found.items() if m not in catalog or not catalog[m].string}
    assert not missing, f"untranslated (add them to {PO.name} and run pybabel compile): {missing}"


def test_compiled_catalog_matches_the_po_file():
    from babel.messages.mofile import read_mo

    with PO.open("rb") as f:
        source = {m.id: m.string for m in read_po(f) if m.id and m.string}
    with PO.with_suffix(".mo").open("rb") as f:
        compiled = {m.id: m.string for m in read_mo(f) if m.id and m.string}
    assert compiled == source, "run: pybabel compile -d gisgrid/translations -D messages"
