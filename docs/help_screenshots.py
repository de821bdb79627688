"""Take the help page's screenshots (gisgrid/web/static/help/<lang>/*.png) from the demo, in both languages.

Run against a database holding the demo (``make demo``, or any database ``gisgrid demo load`` filled and
``gisgrid demo users`` gave its accounts)::

    .venv/bin/python docs/help_screenshots.py [DATABASE_URL]

It serves the app on 127.0.0.1, signs in through the login page as the demo accounts (password
``gisgrid.demo.DEMO_PASSWORD``), opens each page in headless Chromium at 960 × 600 and saves it as a
64-colour PNG (about 30–60 KB each), so the help page stays light on an intranet.
"""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path

from PIL import Image
from werkzeug.serving import make_server

from gisgrid.config import STATIC_DIR, load_settings
from gisgrid.demo import DEMO_PASSWORD

OUT = STATIC_DIR / "help"
VIEW = {"width": 960, "height": 600}
#: name -> (demo account, path); ``{case}`` is the first case with a place.
SHOTS = {
    "home": ("admin", "/"),
    "manager": ("manager", "/map"),
    "case": ("admin", "/cases/{case}"),
    "cases": ("dispatcher", "/cases"),
    "plan": ("planner", "/plan"),
}


def _save(png: bytes, path: Path) -> None:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    path.parent.mkdir(parents=True, exist_ok=True)
    small.save(path, optimize=True)


def main(database_url: str | None = None) -> None:
    import sqlalchemy as sa
    from playwright.sync_api import sync_playwright

    from gisgrid.web import create_app

    settings = load_settings()
    config = {"TESTING": True, "GISGRID_SETTINGS": settings, "LOGIN_RATE_LIMIT": "1000 per minute"}
    if database_url:
        config["DATABASE_URL"] = database_url
    app = create_app(config)
    with app.extensions["gisgrid.engine"].connect() as conn:
        case_id = conn.execute(sa.text("SELECT min(id) FROM report WHERE geom IS NOT NULL")).scalar()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=settings.chromium_path, headless=True, args=["--no-sandbox"])
            for lang in ("zh_CN", "en"):
                for name, (user, path) in SHOTS.items():
                    context = browser.new_context(viewport=VIEW, service_workers="block")
                    page = context.new_page()
                    page.goto(f"{base}/auth/login?lang={lang}")
                    page.fill("input[name=username]", user)
                    page.fill("input[name=password]", DEMO_PASSWORD)
                    page.click("#gg-login")
                    page.wait_for_load_state("networkidle")
                    page.goto(base + path.format(case=case_id), wait_until="networkidle")
                    page.wait_for_timeout(800)
                    _save(page.screenshot(), OUT / lang / f"{name}.png")
                    sys.stdout.write(f"{lang}/{name}.png\n")
                    context.close()
            browser.close()
    finally:
        server.shutdown()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
