"""The Flask application factory (flaskr style): nothing is built at import time."""

from __future__ import annotations

import logging

from flask import Flask

from gisgrid.config import DEFAULT_SECRET_KEY, TEMPLATE_DIR, TRANSLATIONS_DIR, load_settings

LOGGER = logging.getLogger(__name__)

LANGUAGES = {"zh_CN": "中文", "en": "English"}


def _template_folder() -> str:
    """The templates shipped inside the package (``gisgrid/web/templates``)."""
    return str(TEMPLATE_DIR)


def create_app(test_config: dict | None = None, *, ephemeral_key: bool = False) -> Flask:
    """Create the gisgrid web app.

    Parameters
    ----------
    test_config : dict, optional
        Overrides applied last (tests pass ``GISGRID_SETTINGS`` or ``DATABASE_URL`` here).
    ephemeral_key : bool
        With the default secret key, sign sessions with a random key of this
        process instead of refusing to start (the command line's app, which
        serves no pages; ``gisgrid serve`` refuses).

    Raises
    ------
    ConfigError
        The secret key is the default one, outside the demo and tests.
    """
    app = Flask(__name__, template_folder=_template_folder(), instance_relative_config=True)
    settings = (test_config or {}).get("GISGRID_SETTINGS") or load_settings()
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        GISGRID_SETTINGS=settings,
        DATABASE_URL=None,
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS_DIR),
        JSON_AS_ASCII=False,
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)

    from gisgrid.maps.assets import use_local_assets
    from gisgrid.web import access, auth, db, guards, i18n, security

    if app.config.get("SECRET_KEY") in (None, "", DEFAULT_SECRET_KEY):
        app.config["SECRET_KEY"] = security.secret_key(
            settings, testing=bool(app.config.get("TESTING")), ephemeral=ephemeral_key
        )
    use_local_assets()
    db.init_app(app)
    from gisgrid.jobs import Snapshots

    # the routing snapshot and gazetteers, rebuilt one at a time; `gisgrid serve` shares them with its worker
    app.extensions["gisgrid.snapshots"] = Snapshots(settings)
    i18n.init_app(app)
    guards.init_app(app)
    security.init_app(app)
    auth.init_app(app)
    access.init_app(app)
    security.init_csrf(app)

    from gisgrid.web import api, export, pages

    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(export.bp)
    from gisgrid.web import audit as audit_pages
    from gisgrid.web import geocode as geocode_pages
    from gisgrid.web import jobs as job_pages
    from gisgrid.web import manager as manager_pages
    from gisgrid.web import plan as plan_pages

    app.register_blueprint(manager_pages.bp)
    app.register_blueprint(geocode_pages.bp)
    app.register_blueprint(audit_pages.bp)
    app.register_blueprint(plan_pages.bp)
    app.register_blueprint(job_pages.bp)
    from gisgrid.web import owners as owner_pages

    app.register_blueprint(owner_pages.bp)
    from gisgrid.web import cases as case_pages

    app.register_blueprint(case_pages.bp)
    from gisgrid.web import users as user_pages

    app.register_blueprint(user_pages.bp)
    from gisgrid.web import inspections as inspection_pages

    app.register_blueprint(inspection_pages.bp)
    from gisgrid.web import rankings as ranking_pages

    app.register_blueprint(ranking_pages.bp)
    from gisgrid.web import frontage as frontage_pages
    from gisgrid.web import public as public_pages

    app.register_blueprint(frontage_pages.bp)
    public_pages.init_app(app)  # the residents' channel, with its abuse limits
    from gisgrid.web import ogc, open311

    app.register_blueprint(open311.bp)
    app.register_blueprint(ogc.bp)
    from gisgrid.web import ops

    ops.init_app(app)  # /metrics, /readyz and the request timing

    return app
