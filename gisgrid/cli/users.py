"""``gisgrid users``: accounts, role grants and the audit log, over :mod:`gisgrid.accounts.store`.

Wired into the main group in :mod:`gisgrid.cli`.
Every change is written to the audit log as done by ``cli:<login name>``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from gisgrid.accounts.roles import ROLE_NAMES
from gisgrid.cli._common import FIRST_ADMIN_HINT, engine_and_settings, handle_errors
from gisgrid.cli._common import cli_actor as _actor

LOGGER = logging.getLogger(__name__)

ROLE_HELP = (
    f"ROLE or ROLE@PLACE (a division code, or a department code for 'department'); roles: {', '.join(ROLE_NAMES)}"
)


def _read_password(generate: bool, stdin: bool, *, prompt: str = "Password") -> tuple[str, bool]:
    """(password, generated)."""
    from gisgrid.accounts.users import generate_password

    if generate:
        return generate_password(), True
    if stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return click.prompt(prompt, hide_input=True, confirmation_prompt=True), False


@click.group()
def users() -> None:
    """User accounts (each belongs to a person), role grants and the audit log."""


@users.command("add")
@click.argument("username")
@click.option("--person", "person_id", type=int, help="Id of the existing person (an owner) the account belongs to.")
@click.option("--name", help="Name of a new person, when the account's person is not an owner yet.")
@click.option("--phone", help="Phone of the new person.")
@click.option("--role", "roles", multiple=True, metavar="ROLE[@PLACE]", help=ROLE_HELP + " (repeatable).")
@click.option("--generate", is_flag=True, help="Generate a password and print it (the user changes it at first login).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@handle_errors
def users_add(username, person_id, name, phone, roles, generate, password_stdin) -> None:
    """Add an account for a person: ``--person ID`` of an existing owner, or ``--name`` for a new person."""
    from gisgrid.accounts.store import create_user, parse_grant

    if (person_id is None) == (name is None):
        raise click.UsageError("give exactly one of --person ID (an existing person) or --name NAME (a new person)")
    grants = [parse_grant(r) for r in roles]
    password, generated = _read_password(generate, password_stdin)
    engine, settings = engine_and_settings()
    with engine.begin() as conn:
        user = create_user(
            conn,
            _actor(),
            username=username,
            password=password,
            min_password_length=settings.password_min_length,
            person_id=person_id,
            name=name,
            phone=phone,
            grants=grants,
            must_change_password=generated,
        )
    click.echo(f"added {user.username} (user {user.id}, person {user.person_id} {user.name})")
    if user.grants:
        click.echo("roles: " + ", ".join(g.describe() for g in user.grants))
    if generated:
        click.echo(f"password: {password}  (to be changed at first login)")


@users.command("list")
@handle_errors
def users_list() -> None:
    """Every account with its person and roles."""
    from gisgrid.accounts.store import list_users

    engine, _settings = engine_and_settings()
    with engine.connect() as conn:
        frame = list_users(conn)
    if frame.empty:
        click.echo(f"no user accounts; create the first admin with: {FIRST_ADMIN_HINT}")
        return
    for r in frame.itertuples():
        state = "" if r.active else "  [disabled]"
        if r.locked_until is not None and str(r.locked_until) != "NaT":
            state += f"  [locked until {str(r.locked_until)[:16]}]"
        click.echo(f"{r.id:>5}  {r.username:<20} person {r.person_id:<6} {r.name:<12} {r.roles or '-'}{state}")


def _user_id(conn, username: str) -> int:
    from gisgrid.accounts.store import find_user

    return find_user(conn, username).id


@users.command("disable")
@click.argument("username")
@handle_errors
def users_disable(username) -> None:
    """Disable an account (its open sessions end at once)."""
    from gisgrid.accounts.store import set_active

    engine, _settings = engine_and_settings()
    with engine.begin() as conn:
        set_active(conn, _actor(), _user_id(conn, username), False)
    click.echo(f"disabled {username}")


@users.command("enable")
@click.argument("username")
@handle_errors
def users_enable(username) -> None:
    """Enable a disabled account again (and lift a lock)."""
    from gisgrid.accounts.store import set_active

    engine, _settings = engine_and_settings()
    with engine.begin() as conn:
        set_active(conn, _actor(), _user_id(conn, username), True)
    click.echo(f"enabled {username}")


@users.command("reset-password")
@click.argument("username")
@click.option("--generate", is_flag=True, help="Generate a password and print it.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@handle_errors
def users_reset_password(username, generate, password_stdin) -> None:
    """Set a new password; the user must change it at the next login.  Ends the user's sessions, lifts a lock."""
    from gisgrid.accounts.store import set_password

    password, generated = _read_password(generate, password_stdin, prompt="New password")
    engine, settings = engine_and_settings()
    with engine.begin() as conn:
        set_password(
            conn,
            _actor(),
            _user_id(conn, username),
            password,
            min_password_length=settings.password_min_length,
            must_change=True,
        )
    click.echo(f"password of {username} reset" + (f": {password}" if generated else ""))


@users.command("grant")
@click.argument("username")
@click.argument("role", metavar="ROLE[@PLACE]")
@handle_errors
def users_grant(username, role) -> None:
    """Grant a role, e.g. ``manager@110108`` (a county), ``planner@110108001`` (a town), ``admin``."""
    from gisgrid.accounts.store import grant_role, parse_grant

    name, place = parse_grant(role)
    engine, _settings = engine_and_settings()
    with engine.begin() as conn:
        added = grant_role(conn, _actor(), _user_id(conn, username), name, place)
    click.echo(f"granted {role} to {username}" if added else f"{username} holds {role} already")


@users.command("revoke")
@click.argument("username")
@click.argument("role", metavar="ROLE[@PLACE]")
@handle_errors
def users_revoke(username, role) -> None:
    """Remove a role grant (the same ROLE[@PLACE] as granted)."""
    from gisgrid.accounts.store import parse_grant, revoke_role

    name, place = parse_grant(role)
    engine, _settings = engine_and_settings()
    with engine.begin() as conn:
        n = revoke_role(conn, _actor(), _user_id(conn, username), name, place)
    if not n:
        raise click.ClickException(f"{username} holds no grant {role}")
    click.echo(f"revoked {role} from {username}")


@users.command("import")
@click.argument("path", type=click.Path(dir_okay=False, exists=True))
@click.option("--sheet", help="XLSX sheet name (default: the first sheet).")
@click.option(
    "-o",
    "--passwords",
    "out_path",
    type=click.Path(dir_okay=False),
    help="Write the generated passwords to this CSV (default: print them).",
)
@handle_errors
def users_import(path, sheet, out_path) -> None:
    """Create accounts from an XLSX or CSV sheet (all or nothing).

    Columns: 用户名/username, 姓名/name or person_id, 电话/phone, 角色/roles
    (``role@code`` separated by ``;``), 密码/password (generated when empty;
    such users change it at first login).
    """
    from gisgrid.accounts.store import import_users
    from gisgrid.db.imports import read_table

    frame, unreadable = read_table(path, sheet=sheet)
    if unreadable:  # all or nothing: a row the reader could not read stops the import
        from gisgrid.errors import InputError

        listed = "; ".join(f"row {row}: {reason}" for row, reason in sorted(unreadable.items())[:10])
        raise InputError(f"{len(unreadable)} row(s) could not be read, nothing imported: {listed}")
    engine, settings = engine_and_settings()
    with engine.begin() as conn:
        created = import_users(conn, _actor(), frame, min_password_length=settings.password_min_length)
    click.echo(f"imported {len(created)} user(s)")
    generated = [c for c in created if c["password"]]
    if out_path:
        import pandas as pd

        from gisgrid.io import write_table  # the one writer: safe to open in a spreadsheet program

        rows = pd.DataFrame([(c["username"], c["password"]) for c in generated], columns=["username", "password"])
        write_table(rows, Path(out_path), kind="xlsx" if Path(out_path).suffix.lower() == ".xlsx" else "csv")
        click.echo(f"generated passwords of {len(generated)} user(s) written to {out_path}")
    else:
        for c in generated:
            click.echo(f"  {c['username']:<20} {c['password']}")


@users.group("api-key")
def users_api_key() -> None:
    """API keys of machine clients (accounts with the api_client role): ``Authorization: Bearer <key>``."""


@users_api_key.command("create")
@click.argument("username")
@click.option("--name", "key_name", required=True, help="What the key is for (e.g. the 12345 hotline bridge).")
@handle_errors
def api_key_create(username, key_name) -> None:
    """Make a key for USERNAME and print it (once: only its digest is stored)."""
    from gisgrid.accounts.store import create_api_key

    engine, _settings = engine_and_settings()
    with engine.begin() as conn:
        text, key_id = create_api_key(conn, _actor(), _user_id(conn, username), key_name)
    click.echo(f"API key {key_id} for {username}: {text}")
    click.echo("shown once: give it to the client now (send it as 'Authorization: Bearer <key>')")


@users_api_key.command("list")
@click.argument("username", required=False)
@handle_errors
def api_key_list(username) -> None:
    """Every key (or USERNAME's): id, user, prefix, name, made, last used, revoked.  Never the secret."""
    from gisgrid.accounts.store import list_api_keys

    engine, _settings = engine_and_settings()
    with engine.connect() as conn:
        frame = list_api_keys(conn, _user_id(conn, username) if username else None)
    if frame.empty:
        click.echo("no API keys")
        return
    for k in frame.itertuples():
        state = f"revoked {str(k.revoked_at)[:16]}" if k.revoked_at is not None and str(k.revoked_at) != "NaT" else ""
        used = str(k.last_used_at)[:16] if k.last_used_at is not None and str(k.last_used_at) != "NaT" else "never"
        click.echo(
            f"{k.id:>5}  {k.username:<20} gg_{k.prefix}_…  {k.name:<24} made {str(k.created_at)[:16]}  "
            f"used {used}  {state}".rstrip()
        )


@users_api_key.command("revoke")
@click.argument("key", metavar="KEY_ID|PREFIX")
@handle_errors
def api_key_revoke(key) -> None:
    """Revoke a key by its id or prefix (it stops working at once)."""
    from gisgrid.accounts.store import find_api_key, revoke_api_key

    engine, _settings = engine_and_settings()
    with engine.begin() as conn:
        revoke_api_key(conn, _actor(), find_api_key(conn, key))
    click.echo(f"revoked API key {key}")


@users.command("log")
@click.option("--actor", help="A user name, a person's name (part of it) or a user id.")
@click.option("--action", help="An action or its prefix: plan, owner, user, login ...")
@click.option("--limit", default=50, show_default=True)
@handle_errors
def users_log(actor, action, limit) -> None:
    """The audit log, newest first."""
    from gisgrid.accounts.store import search_audit_log

    engine, _settings = engine_and_settings()
    with engine.connect() as conn:
        frame = search_audit_log(conn, actor=actor, action=action, limit=limit)
    for r in frame.itertuples():
        target = f"{r.target_type or ''} {r.target_id or ''}".strip()
        click.echo(f"{str(r.at)[:19]}  {r.actor_name:<16} {r.action:<22} {target:<16} {r.after or r.detail or ''}")
