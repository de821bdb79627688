"""A standalone map page rendered to PNG by headless Chromium (playwright), with no network access.

The page must be self-contained (every script, style and image inlined, as
the manager map's offline export is): every request for anything but
``file:`` and ``data:`` URLs is refused, so nothing leaves the machine.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gisgrid.errors import ConfigError, GisgridError

LOGGER = logging.getLogger(__name__)

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
#: Milliseconds to wait for the map's vector layer to appear.
MAP_READY_TIMEOUT_MS = 15_000


class RenderError(GisgridError):
    default_msg = "the map could not be rendered"


def render_png(
    html: Path, png: Path, *, chromium: str = "/usr/bin/chromium", width: int = 1400, height: int = 1000
) -> Path:
    """Render the standalone Leaflet page ``html`` to ``png`` (``width`` × ``height`` CSS pixels).

    Parameters
    ----------
    html, png : Path
        The page to open (a local file) and where to write the screenshot
        (written to a temporary name, then renamed, so a reader never sees half a file).
    chromium : str
        The Chromium executable.

    Raises
    ------
    ConfigError
        playwright is not installed, or Chromium is not at ``chromium``.
    RenderError
        The page did not show a map in time.
    """
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise ConfigError("the PNG export needs the Python package playwright (pip install playwright)") from exc
    if not Path(chromium).is_file():
        raise ConfigError(f"the PNG export needs Chromium at {chromium} (setting GISGRID_CHROMIUM_PATH)")
    html, png = Path(html), Path(png)
    tmp = png.with_name(png.name + ".part")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=list(CHROMIUM_ARGS))
            try:
                page = browser.new_page(viewport={"width": int(width), "height": int(height)})
                page.route(
                    "**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort()
                )
                page.goto(html.resolve().as_uri())
                page.wait_for_selector(
                    ".leaflet-overlay-pane svg, .leaflet-overlay-pane canvas", timeout=MAP_READY_TIMEOUT_MS
                )
                page.wait_for_timeout(300)
                page.screenshot(path=str(tmp), type="png", full_page=False)
            finally:
                browser.close()
    except PlaywrightError as exc:
        LOGGER.warning("rendering %s failed: %s", html, exc)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RenderError(f"the map could not be rendered: {first}") from exc
    tmp.replace(png)
    return png


__all__ = ["CHROMIUM_ARGS", "RenderError", "render_png"]
