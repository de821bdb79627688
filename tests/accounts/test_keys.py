"""API keys: made once, stored as a digest, acting as their user only while the user may use them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gisgrid.accounts import keys, store
from gisgrid.accounts.users import Actor
from gisgrid.errors import InputError

ACTOR = Actor.system("test")


def test_key_text_is_parsed_and_checked_in_constant_time():
    made = keys.new_key()
    prefix, secret = keys.parse_key(made.text)
    assert prefix == made.prefix and keys.secret_matches(made.secret_sha256, secret)
    assert not keys.secret_matches(made.secret_sha256, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    for bad in ("", "gg_x", made.text + "x", "Bearer " + made.text, made.text.replace("gg_", "xx_")):
        assert keys.parse_key(bad) is None
    assert keys.bearer_token("Bearer  abc ") == "abc" and keys.bearer_token("Basic abc") is None


@pytest.fixture()
def conn(scratch_engine):
    with scratch_engine.begin() as c:
        yield c


def _client(conn, name="hotline", *, role="api_client"):
    grants = [(role, None)] if role else []
    return store.create_user(
        conn, ACTOR, username=name, password="client-password-1", min_password_length=10, name="热线", grants=grants
    )


def test_a_key_acts_as_its_user_until_revoked_disabled_or_the_role_goes(conn):
    with pytest.raises(InputError, match="api_client"):
        store.create_api_key(conn, ACTOR, _client(conn, "nokeys", role="manager").id, "x")
    user = _client(conn)
    text, key_id = store.create_api_key(conn, ACTOR, user.id, "12345 热线")
    assert (
        conn.execute(
            sa.text("SELECT count(*) FROM api_key WHERE secret_sha256 LIKE '%' || :s || '%'"),
            {"s": text.rsplit("_", 1)[1]},
        ).scalar()
        == 0
    )
    found, kid = store.authenticate_api_key(conn, text)
    assert found.id == user.id and kid == key_id
    assert store.authenticate_api_key(conn, text[:-2] + "xx") is None
    store.revoke_api_key(conn, ACTOR, key_id)
    assert store.authenticate_api_key(conn, text) is None
    with pytest.raises(InputError, match="revoked already"):
        store.revoke_api_key(conn, ACTOR, key_id)
    text2, _ = store.create_api_key(conn, ACTOR, user.id, "second")
    store.set_active(conn, ACTOR, user.id, False)
    assert store.authenticate_api_key(conn, text2) is None  # a disabled account's keys stop
    store.set_active(conn, ACTOR, user.id, True)
    assert store.authenticate_api_key(conn, text2) is not None
    store.revoke_role(conn, ACTOR, user.id, "api_client")
    assert store.authenticate_api_key(conn, text2) is None  # no longer an API client: no key works
    actions = [r[0] for r in conn.execute(sa.text("SELECT action FROM audit_log WHERE action LIKE 'api_key.%'"))]
    assert actions == ["api_key.create", "api_key.revoke", "api_key.create"]
