"""Encryption of stored credentials, and hashing of the tokens we hand out."""

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretBox:
    """Fernet (AES-128-CBC + HMAC) with a key derived from SECRET_KEY, so the raw setting is never the key."""

    def __init__(self, secret_key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"lucca-connectors", info=b"stored credentials"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()

    def encrypt_json(self, value: dict[str, Any]) -> str:
        return self.encrypt(json.dumps(value))

    def decrypt_json(self, token: str | None) -> dict[str, Any]:
        return json.loads(self.decrypt(token)) if token else {}


def hash_token(token: str) -> str:
    """Tokens are long and random, so a plain SHA-256 is enough (no slow hash needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


def new_tenant_key() -> str:
    return "lct_" + secrets.token_urlsafe(32)


def new_webhook_token() -> str:
    return str(uuid.uuid4())


def new_signing_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and the base64 of the HMAC key's 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
