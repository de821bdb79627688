"""``pip install .`` gives a working gisgrid away from the source tree.

The wheel is built from the checkout and installed without dependencies into a
fresh venv whose only link to the project's venv is a ``.pth`` line for the
third-party packages; every command then runs from a folder outside the
source tree, so nothing can be found by accident through the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from gisgrid.config import PROJECT_ROOT

_SMOKE = textwrap.dedent(
    """
    import json, sys
    import gisgrid
    from gisgrid.config import load_settings
    from gisgrid.db import alembic_config
    from alembic.script import ScriptDirectory

    url = sys.argv[1]
    heads = ScriptDirectory.from_config(alembic_config(url)).get_heads()
    settings = load_settings(database_url=url, pg_durable=False)
    app = gisgrid.create_app({"TESTING": True, "DATABASE_URL": url, "GISGRID_SETTINGS": settings})
    client = app.test_client()
    first = client.get("/?lang=en")  # nobody signed in: the login page
    login = client.get(first.headers.get("Location", "/auth/login") + "&lang=en")
    css = client.get("/static/vendor/leaflet/leaflet.css")
    print(json.dumps({"file": gisgrid.__file__, "heads": heads, "home": first.status_code,
                      "login": login.status_code, "login_text": login.get_data(as_text=True)[:20000],
                      "css": css.status_code,
                      "var_dir": settings.var_dir}))
    """
)


def _run(args, *, cwd, env, timeout=300):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args[:3]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the gisgrid wheel installed; returns (venv, work folder, environment)."""
    root = tmp_path_factory.mktemp("install")
    wheels, venv, work = root / "wheels", root / "venv", root / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GISGRID_", "PYTHON", "VIRTUAL_ENV"))}
    env["HOME"] = str(root / "home")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(PROJECT_ROOT),
        ],
        cwd=work,
        env=env,
    )
    _run([sys.executable, "-m", "venv", str(venv)], cwd=work, env=env)
    # third-party packages come from the project's venv (no network in tests); gisgrid itself does not
    site = Path(
        subprocess.check_output(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(wheels.glob("gisgrid-*.whl"))
    _run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        cwd=work,
        env=env,
    )
    return venv, work, env


def test_installed_copy_serves_pages_and_finds_its_migrations(installed, db_url, town):
    venv, work, env = installed
    out = _run([str(venv / "bin" / "python"), "-c", _SMOKE, db_url], cwd=work, env=env)
    info = json.loads(out.strip().splitlines()[-1])
    assert str(venv) in info["file"], "gisgrid was imported from the checkout, not the installed copy"
    assert info["heads"], "the installed copy found no Alembic revisions"
    assert info["home"] == 302, "the home page asks to sign in"
    assert info["login"] == 200 and "<html" in info["login_text"].lower() and "Log in" in info["login_text"]
    assert info["css"] == 200, "vendored assets are missing from the installed package"
    # the data folder never lands inside site-packages
    assert "site-packages" not in info["var_dir"] and info["var_dir"].startswith(env["HOME"])


def test_installed_command_line_and_var_dir_setting(installed, tmp_path):
    venv, work, env = installed
    out = _run([str(venv / "bin" / "gisgrid"), "--help"], cwd=work, env=env)
    for group in ("db", "demo", "import", "assign", "serve"):
        assert group in out
    own = dict(env, GISGRID_VAR_DIR=str(tmp_path / "gg-var"))
    probe = (
        "from gisgrid.config import load_settings, DATA_DIR; print(load_settings().var_dir); print(DATA_DIR.is_dir())"
    )
    lines = _run([str(venv / "bin" / "python"), "-c", probe], cwd=work, env=own).split()
    assert lines == [str(tmp_path / "gg-var"), "True"], (
        "GISGRID_VAR_DIR is not honoured, or the sample towns are missing"
    )
