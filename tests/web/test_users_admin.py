"""User management for admins in the browser: the store functions of `gisgrid users`, each write in the audit log."""

from __future__ import annotations

import re

import sqlalchemy as sa

from gisgrid.accounts.store import authenticate_api_key, find_user


def _log(engine, user_id: int) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "SELECT action, actor_name FROM audit_log WHERE target_type = 'user' AND target_id = :u ORDER BY id"
                ),
                {"u": str(user_id)},
            )
        ]


def test_an_admin_manages_an_account_from_creation_to_api_key(app, users, engine):
    admin = app.test_client(user="admin")
    with engine.begin() as conn:
        person = conn.execute(
            sa.text("INSERT INTO person (name, phone) VALUES ('新账号人', '555') RETURNING id")
        ).scalar()
    assert "duanzhang" in admin.get("/admin/users/").get_data(as_text=True)
    made = admin.post(
        "/admin/users/new",
        data={"username": "New.Clerk", "person": f"person:{person}", "role": "clerk", "place": "110108001"},
    )
    page = made.get_data(as_text=True)
    assert made.status_code == 201, page[:1000]
    password = re.search(r'id="gg-secret-value">([^<]+)<', page).group(1)
    with engine.connect() as conn:
        user = find_user(conn, "new.clerk")
    assert (
        user.person_id == person
        and user.must_change_password
        and [g.describe() for g in user.grants] == ["clerk@110108001"]
    )
    assert len(password) >= 16
    uid = user.id
    assert admin.post(f"/admin/users/{uid}/active", data={"active": "0"}).status_code == 303
    assert "已停用" in admin.get(f"/admin/users/{uid}").get_data(as_text=True) or "disabled" in admin.get(
        f"/admin/users/{uid}"
    ).get_data(as_text=True)
    assert admin.post(f"/admin/users/{uid}/active", data={"active": "1"}).status_code == 303
    reset = admin.post(f"/admin/users/{uid}/password", data={"password": ""})
    assert reset.status_code == 200 and 'id="gg-secret-value"' in reset.get_data(as_text=True)
    assert admin.post(f"/admin/users/{uid}/grant", data={"role": "planner", "place": "110108"}).status_code == 303
    bad = admin.post(f"/admin/users/{uid}/grant", data={"role": "planner", "place": "nowhere"})
    assert bad.status_code == 400 and "nowhere" in bad.get_data(as_text=True)
    assert admin.post(f"/admin/users/{uid}/revoke", data={"role": "clerk", "place": "110108001"}).status_code == 303
    with engine.connect() as conn:
        assert [g.describe() for g in find_user(conn, "new.clerk").grants] == ["planner@110108"]
    # keys are for API clients
    refused = admin.post(f"/admin/users/{uid}/api-keys", data={"name": "bridge"})
    assert refused.status_code == 400 and "api_client" in refused.get_data(as_text=True)
    admin.post(f"/admin/users/{uid}/grant", data={"role": "api_client", "place": ""})
    key_page = admin.post(f"/admin/users/{uid}/api-keys", data={"name": "bridge"})
    assert key_page.status_code == 201
    key = re.search(r'id="gg-secret-value">(gg_[^<]+)<', key_page.get_data(as_text=True)).group(1)
    shown = admin.get(f"/admin/users/{uid}").get_data(as_text=True)
    assert key not in shown and key.split("_")[1] in shown  # the prefix is listed, the key never again
    with engine.connect() as conn:
        key_id = conn.execute(sa.text("SELECT id FROM api_key WHERE user_id = :u"), {"u": uid}).scalar()
    assert admin.post(f"/admin/users/{uid}/api-keys/{key_id}/revoke").status_code == 303
    with engine.begin() as conn:
        assert authenticate_api_key(conn, key) is None
    name = users["admin"]["name"]
    assert _log(engine, uid) == [
        ("user.add", name),
        ("user.grant", name),
        ("user.disable", name),
        ("user.enable", name),
        ("user.password_reset", name),
        ("user.grant", name),
        ("user.revoke", name),
        ("user.grant", name),
        ("api_key.create", name),
        ("api_key.revoke", name),
    ]


def test_an_admin_cannot_lock_themselves_out_and_others_cannot_manage_users(app, users):
    admin = app.test_client(user="admin")
    me = users["admin"]["id"]
    assert admin.post(f"/admin/users/{me}/active", data={"active": "0"}).status_code == 400
    assert admin.post(f"/admin/users/{me}/revoke", data={"role": "admin", "place": ""}).status_code == 400
    assert app.test_client(user="manager").get("/admin/users/").status_code == 403
    assert admin.get("/admin/users/999999999").status_code == 404
    unknown = admin.post("/admin/users/new", data={"username": "ghost", "person": "person:999999999"})
    assert unknown.status_code == 404 and "999999999" in unknown.get_data(as_text=True)
