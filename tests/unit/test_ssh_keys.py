"""SSH private keys: what opening one would cost is read from the key before anything is derived, hostile keys are
refused in microseconds, usual keys open once (decrypted), and a panic of the parser is a refusal."""

import binascii
import struct
from typing import Any

import asyncssh
import pytest
from asyncssh.asn1 import ObjectIdentifier, der_decode, der_encode

from app.clients import ssh_keys
from app.clients.ssh_keys import UnreadableKey, derivation_problem, imported, opened_private_key, signing_key

ED25519 = asyncssh.generate_private_key("ssh-ed25519")
SCRYPT = ObjectIdentifier("1.3.6.1.4.1.11591.4.11")


def pem(der: bytes, label: str = "ENCRYPTED PRIVATE KEY") -> str:
    text = binascii.b2a_base64(der, newline=False).decode()
    lines = "\n".join(text[start : start + 64] for start in range(0, len(text), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n"


def encrypted_info() -> Any:
    """An Ed25519 key's EncryptedPrivateKeyInfo (PBES2, PBKDF2, passphrase `pw`), decoded."""
    encrypted = ED25519.export_private_key("pkcs8-pem", passphrase="pw").decode()
    decoded: Any = der_decode(binascii.a2b_base64("".join(encrypted.splitlines()[1:-1])))
    return decoded


def pkcs8_asking(iterations: int) -> str:
    """That key, its header asking for `iterations` of PBKDF2."""
    (scheme, ((kdf, (salt, _, *prf)), cipher)), data = encrypted_info()
    return pem(der_encode(((scheme, ((kdf, (salt, iterations, *prf)), cipher)), data)))


def scrypt_asking(n: int, r: int, p: int) -> str:
    """That key's shape, with scrypt's parameters (RFC 7914) instead of PBKDF2's."""
    (scheme, ((_, (salt, *_)), cipher)), data = encrypted_info()
    return pem(der_encode(((scheme, ((SCRYPT, (salt, n, r, p, 32)), cipher)), data)))


def openssh_asking(rounds: int) -> str:
    """An OpenSSH-format key encrypted with bcrypt's KDF, asking for `rounds`."""

    def string(value: bytes) -> bytes:
        return struct.pack(">I", len(value)) + value

    options = string(b"0123456789abcdef") + struct.pack(">I", rounds)
    blob = b"openssh-key-v1\x00" + string(b"aes256-ctr") + string(b"bcrypt") + string(options)
    blob += struct.pack(">I", 1) + string(ED25519.public_data) + string(bytes(64))
    return pem(blob, "OPENSSH PRIVATE KEY")


def nested(depth: int) -> bytes:
    """DER sequences, each holding the next."""
    der = b""
    for _ in range(depth):
        der = b"\x30" + (bytes([len(der)]) if len(der) < 128 else b"\x82" + len(der).to_bytes(2, "big")) + der
    return der


HOSTILE = {
    "2**31 - 1 PBKDF2 iterations (minutes)": pkcs8_asking(2**31 - 1),
    "2**31 PBKDF2 iterations (cryptography panics)": pkcs8_asking(2**31),
    "2**64 PBKDF2 iterations": pkcs8_asking(2**64),
    "no iterations": pkcs8_asking(0),
    "scrypt, N 2**40, r and p 2**20": scrypt_asking(2**40, 2**20, 2**20),
    "2**32 - 1 bcrypt rounds": openssh_asking(2**32 - 1),
}


@pytest.mark.parametrize("key", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_key_asking_for_too_much_work_is_refused_before_anything_is_derived(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def derive(*args: object, **kwargs: object) -> None:
        pytest.fail("a key's derivation was attempted")

    monkeypatch.setattr(asyncssh, "import_private_key", derive)
    problem = derivation_problem(key)
    assert problem is not None
    assert "asks for" in problem or "cannot be read here" in problem


@pytest.mark.parametrize(
    "key",
    [
        ED25519.export_private_key().decode(),  # OpenSSH, unencrypted
        ED25519.export_private_key("pkcs8-pem").decode(),
        ED25519.export_private_key("pkcs8-pem", passphrase="pw").decode(),  # PBKDF2, 2,048 iterations
        ED25519.export_private_key(
            "pkcs8-pem", passphrase="pw", cipher_name="des-cbc", hash_name="md5", pbe_version=1
        ).decode(),  # PKCS#5 v1.5, 2,048 iterations
        asyncssh.generate_private_key("ssh-rsa", key_size=1024)
        .export_private_key("pkcs1-pem", passphrase="pw")
        .decode(),
        pkcs8_asking(ssh_keys.MAX_PBKDF2_ITERATIONS),
        openssh_asking(100),  # `ssh-keygen -a 100` (refused later, for want of bcrypt)
        "\r\n" + ED25519.export_private_key().decode().replace("\n", "\r\n"),
    ],
    ids=[
        "openssh",
        "pkcs8",
        "pkcs8 pbkdf2",
        "pkcs8 pbes1",
        "pkcs1 encrypted",
        "pbkdf2 at the limit",
        "bcrypt 100",
        "crlf",
    ],
)
def test_keys_made_with_usual_settings_pass(key: str) -> None:
    assert derivation_problem(key) is None


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n",
        f"Bag Attributes: none\n{ED25519.export_private_key().decode()}",  # something before the block
        ED25519.export_private_key().decode() * 2,  # two blocks
        ED25519.export_private_key("pkcs8-pem").decode().replace("BEGIN PRIVATE", "BEGIN  PRIVATE"),
        pem(nested(5000)),  # deeper than Python recurses
        "-----BEGIN PRIVATE KEY-----\n" + "A:\n" * 6000,
    ],
)
def test_anything_but_one_key_block_does_not_parse(text: str) -> None:
    # What refusing costs is bench.elevo_keys' figure, not a timed assertion (one here failed on a loaded machine).
    assert derivation_problem(text) == ssh_keys.NOT_A_KEY


def test_a_panic_of_the_cryptography_package_is_a_refusal_not_a_crash() -> None:
    # Only reached if the bound were missing: the bounded path never asks for 2**31 iterations.
    with pytest.raises(UnreadableKey) as refused:
        imported(HOSTILE["2**31 PBKDF2 iterations (cryptography panics)"], "pw", checked=False)
    assert refused.value.field == "private_key"


async def test_a_key_is_opened_once_into_unencrypted_openssh_text() -> None:
    rsa = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    opened = await opened_private_key(rsa.export_private_key("pkcs8-pem", passphrase="pw").decode(), "pw")
    assert opened.startswith("-----BEGIN OPENSSH PRIVATE KEY-----") and derivation_problem(opened) is None
    assert (await signing_key(opened, None)).public_data == rsa.public_data
    for passphrase, words in ((None, "give its passphrase"), ("wrong", "does not decrypt with this passphrase")):
        with pytest.raises(UnreadableKey) as refused:
            await opened_private_key(pkcs8_asking(2048), passphrase)
        assert refused.value.field == "passphrase" and words in str(refused.value)


async def test_keys_too_large_to_check_quickly_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh_keys, "MAX_KEY_BITS", 2048)
    large = asyncssh.generate_private_key("ssh-rsa", key_size=3072).export_private_key().decode()
    with pytest.raises(UnreadableKey) as refused:
        await opened_private_key(large, None)
    assert (refused.value.field, str(refused.value).split(":")[0]) == ("private_key", "is a 3,072-bit key")
