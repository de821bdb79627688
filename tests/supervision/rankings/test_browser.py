"""The rankings page in headless Chromium on the sample towns (a year of demo cases): the table sorts, the map
and trend lines show, a click on a unit lists its cases, and the page fits a phone (tests/artifacts/rankings*.png)."""

from __future__ import annotations

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def _column(page, col: str) -> list[str]:
    return page.eval_on_selector_all(
        f'#gg-ranking-table tbody td[data-col="{col}"]', "cells => cells.map(c => c.getAttribute('data-sort'))"
    )


def test_rankings_page_sorts_and_leads_to_the_cases(app, live_server, browser):
    base = live_server(app)
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/rankings/?kind=street")
    assert page.locator("#gg-ranking-table tbody tr").count() >= 3
    ranks = [int(v) for v in _column(page, "rank")]
    assert ranks == sorted(ranks)
    assert page.locator("#gg-ranking-map svg path").count() >= 3
    assert page.locator("td.gg-spark svg").count() == len(ranks)
    page.click('#gg-ranking-table th[data-col="cases_filed"]')
    filed = [int(v) for v in _column(page, "cases_filed")]
    assert filed == sorted(filed)
    page.click('#gg-ranking-table th[data-col="cases_filed"]')
    filed = [int(v) for v in _column(page, "cases_filed")]
    assert filed == sorted(filed, reverse=True)
    page.screenshot(path=str(ARTIFACTS / "rankings.png"), full_page=True)
    page.goto(f"{base}/rankings/?kind=community")
    page.screenshot(path=str(ARTIFACTS / "rankings-communities.png"), full_page=True)
    page.locator("#gg-ranking-table tbody td[data-col='unit_name'] a").first.click()
    page.wait_for_selector("#gg-behind")
    n = page.locator("#gg-behind-filed a").count()
    assert n >= 1
    page.screenshot(path=str(ARTIFACTS / "rankings-unit.png"), full_page=True)
    assert not errors, errors
    context.close()


def test_rankings_page_fits_a_phone_in_english(app, live_server, browser):
    base = live_server(app)
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US", is_mobile=True)
    page = context.new_page()
    page.goto(f"{base}/rankings/?kind=street&lang=en")
    assert page.locator("#gg-ranking-title").inner_text().count(":") >= 1
    assert "Composite score" in page.content()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # the header wraps and the wide table scrolls inside its box, not the page
    page.screenshot(path=str(ARTIFACTS / "rankings-phone.png"), full_page=True)
    context.close()
