"""The frontage tests share the session's demo database: the residents' reports they send are removed after each
module, so the other tests see the demo as loaded."""

from __future__ import annotations

import pytest
import sqlalchemy as sa


@pytest.fixture(scope="module", autouse=True)
def _forget_public_reports(engine):
    yield
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM report WHERE source = 'public'"))
