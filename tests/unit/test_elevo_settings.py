"""Elevo's settings (contract 5.4): how nested secrets are kept, stored apart and masked, extra columns keep their
order, and the SFTP host is checked when stored and again when the client connects."""

from datetime import UTC, datetime
from typing import Any

import asyncssh
import pytest
from fastapi.exceptions import RequestValidationError

from app.clients.http import RetryPolicy
from app.clients.sftp import ElevoRejected, SftpAccount, SftpClient
from app.crypto import SecretBox
from app.models import Connector
from app.schemas.connector import MASK
from app.schemas.elevo import ElevoSettings
from app.services.connectors import (
    KINDS,
    check_upstream_host,
    connector_settings,
    keep_stored_secrets,
    merge_settings,
    read_connector,
    require_secrets_for_new_urls,
    store_settings,
    validate_settings,
)

ELEVO = KINDS["elevo"]
BOX = SecretBox("test-secret-key-not-for-production")
HOST_KEY = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
SFTP = {"host": "sftp.elevo.example", "username": "acme", "password": "pw-1", "host_key": HOST_KEY}


def stored(settings: dict[str, Any]) -> Connector:
    now = datetime.now(UTC)
    connector = Connector(kind="elevo", enabled=True, settings={}, created_at=now, updated_at=now)
    values = ElevoSettings.model_validate(settings).model_dump(mode="json")
    store_settings(connector, ELEVO, values, BOX)
    return connector


def test_secrets_are_stored_apart_in_the_settings_shape_and_masked_where_they_were() -> None:
    connector = stored({"sftp": SFTP, "extra_columns": {"z": "login", "a": "mail"}})
    assert "password" not in connector.settings["sftp"] and connector.settings["sftp"]["private_key"] is None
    assert BOX.decrypt_json(connector.secrets_encrypted) == {"sftp": {"password": "pw-1"}}
    assert connector.settings["extra_columns"] == [["z", "login"], ["a", "mail"]]  # JSONB would sort an object
    shown = read_connector(connector, ELEVO).settings
    assert shown["sftp"]["password"] == MASK and shown["sftp"]["private_key"] is None
    assert list(shown["extra_columns"].items()) == [("z", "login"), ("a", "mail")]
    settings = connector_settings(BOX, connector)
    assert isinstance(settings, ElevoSettings) and settings.sftp.password == "pw-1"
    assert list(settings.extra_columns) == ["z", "a"]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ({"sftp": {"host": "h"}}, {"sftp": {"host": "h", "password": "pw-1"}}),  # omitted: kept
        ({"sftp": {"password": MASK}}, {"sftp": {"password": "pw-1"}}),  # masked: kept
        ({"sftp": {"password": None}}, {"sftp": {"password": None}}),  # null: removed
        ({"sftp": {"password": "new"}}, {"sftp": {"password": "new"}}),
        ({"sftp": {"private_key": MASK}}, {"sftp": {"password": "pw-1"}}),  # nothing stored to keep
        ({}, {}),  # no sftp object: nothing to put a secret in
    ],
)
def test_an_omitted_or_masked_secret_keeps_the_stored_one(given: dict[str, Any], kept: dict[str, Any]) -> None:
    assert keep_stored_secrets(ELEVO, given, {"sftp": {"password": "pw-1"}}) == kept


def test_a_patch_replaces_the_sftp_object_but_keeps_its_secret() -> None:
    connector = stored({"sftp": SFTP})
    before = {**read_connector(connector, ELEVO).settings, "sftp": {**SFTP}}
    patched = merge_settings(ELEVO, "elevo", {"sftp": {**SFTP, "password": MASK, "port": 2222}}, before)
    assert isinstance(patched, ElevoSettings) and (patched.sftp.port, patched.sftp.password) == (2222, "pw-1")


def test_a_changed_host_needs_the_secrets_the_settings_hold() -> None:
    connector = stored({"sftp": SFTP})
    moved = {"sftp": {**SFTP, "host": "other.example"}}
    values = validate_settings(ELEVO, "elevo", moved, {"sftp": {"password": "pw-1"}}).model_dump(mode="json")
    given = {"sftp": {key: value for key, value in moved["sftp"].items() if key != "password"}}
    with pytest.raises(RequestValidationError) as refused:
        require_secrets_for_new_urls(ELEVO, values, connector.settings, given)
    # Only the password: the key and its passphrase are not set, so not asked for.
    assert [error["loc"] for error in refused.value.errors()] == [("body", "settings", "sftp", "password")]
    require_secrets_for_new_urls(ELEVO, values, connector.settings, moved)


@pytest.mark.parametrize("host", ["localhost", "a.localhost", "127.0.0.1", "10.0.0.7", "0x7f.0.0.1", "192.168.1.4"])
def test_an_internal_sftp_host_is_refused_when_stored(host: str) -> None:
    with pytest.raises(RequestValidationError) as refused:
        check_upstream_host(host, False, ("settings", "sftp", "host"))
    assert refused.value.errors()[0]["loc"] == ("body", "settings", "sftp", "host")
    check_upstream_host(host, True, ("settings", "sftp", "host"))  # sandboxes and tests
    check_upstream_host("sftp.elevo.example", False, ("settings", "sftp", "host"))


async def test_a_name_that_resolves_inside_our_network_is_never_connected_to() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.5"]  # one private answer is enough to refuse

    account = SftpAccount(host="sftp.elevo.example", username="acme", host_key=HOST_KEY, password="pw-never-shown")
    client = SftpClient(account, retry=RetryPolicy(), timeout_seconds=1, allow_private=False, resolver=resolver)
    with pytest.raises(ElevoRejected) as refused:
        await client.check()
    assert "its address is not public" in refused.value.message and "pw-never-shown" not in repr(account)
