"""The Flask application factory."""
from __future__ import annotations


def create_app(test_config=None):
    from flask import Flask

    app = Flask(__name__)
    return app
