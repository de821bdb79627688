"""gisgrid: street-chief grid management (街长制 / 网格化管理).

Every street segment and grid cell gets exactly one responsible owner; each
reported problem is routed to that owner by location.
"""

from __future__ import annotations

__version__ = "0.1.0"


def create_app(test_config=None):
    """Build the Flask application (see :mod:`gisgrid.web`)."""
    from gisgrid.web import create_app as _create_app

    return _create_app(test_config)
