"""The help page: per role, in both languages, with pictures of the pages; linked from every page; the health
check off the menu."""

from __future__ import annotations

import re

import pytest

from gisgrid.config import STATIC_DIR
from tests.wayfinding.test_phone_browser import PAGES, places  # noqa: F401  (the module fixture)

ROLES = ("maps", "manager", "chief", "clerk", "planner", "admin")


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_help_explains_each_role_with_pictures_in_the_pages_language(app, lang):
    html = app.test_client(user=None).get(f"/help?lang={lang}").get_data(as_text=True)
    for section in ROLES:
        assert f'<section id="{section}">' in html
    pictures = re.findall(r'<img src="/static/(help/[^"]+\.png)"', html)
    assert len(pictures) >= 5
    for picture in pictures:
        path = STATIC_DIR / picture
        assert path.is_file() and f"/{lang}/" in picture, picture
        assert path.stat().st_size < 100_000, f"{picture} is {path.stat().st_size} bytes: keep help pictures small"
    if lang == "zh_CN":
        assert "搜索框" in html and "街长和段长" in html
        assert "Every map" not in html
    else:
        assert "search box" in html and "Street and segment chiefs" in html
        assert "所有地图" not in html
    assert 'href="/healthz"' in html  # the health check lives here now


def test_every_page_links_help_and_keeps_health_off_the_menu(app, users, places):  # noqa: F811
    client = app.test_client()
    for name, (path, _map) in PAGES.items():
        html = client.get(path.format(**places)).get_data(as_text=True)
        nav = html.split('<nav id="gg-nav">', 1)[1].split("</nav>", 1)[0]
        assert 'id="gg-nav-help"' in nav, name
        assert "/healthz" not in nav, name
    anonymous = app.test_client(user=None).get("/auth/login").get_data(as_text=True)
    assert 'href="/help"' in anonymous
