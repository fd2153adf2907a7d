"""SSH private keys as tenants give them: what opening one would cost, judged before anything is derived, and the
opening itself, done once, in the one thread this process gives to key work.

An encrypted key carries its own key-derivation cost (PBKDF2 iterations, bcrypt rounds) and asyncssh pays any:
2³¹ - 1 iterations keep a core busy for minutes, 2³¹ make the `cryptography` package panic. So a key is read only
as one PEM block whose derivation asks for at most the bounds below, and a key that passes is decrypted once, when
it is given: the service keeps it decrypted (encrypted at rest with the other secrets), never its passphrase.
"""

import asyncio
import binascii
import re
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import asyncssh
from asyncssh.asn1 import ObjectIdentifier, der_decode
from asyncssh.packet import SSHPacket

# The most work a key's derivation may ask for. ssh-keygen and openssl ask for far less by default (16 bcrypt
# rounds, 2,048 iterations); these allow the strongest settings in common use.
MAX_PBKDF2_ITERATIONS = 2_000_000  # 0.9 s of one core here with SHA-512; OWASP (2023) advises 1,300,000 with SHA-1
MAX_LEGACY_ITERATIONS = 100_000  # PKCS#5 v1.5 and PKCS#12 schemes, which asyncssh derives in Python: 0.1 s here
MAX_BCRYPT_ROUNDS = 256  # `ssh-keygen -a` (guides advise 64 to 100); bcrypt is not installed, so these are refused
# Checking an RSA key's numbers grows with its size: 0.3 s at 4,096 bits here, 4 s at 8,192, minutes beyond.
MAX_KEY_BITS = 8192
DEFAULT_ITERATIONS, DEFAULT_BCRYPT_ROUNDS = 2048, 16

# One PEM block and nothing else, as asyncssh reads it: its label, PEM headers (an old-style encrypted key's
# `Proc-Type` and `DEK-Info`), then base64. Written so that JSON Schema (ECMA-262) reads it the same way.
PRIVATE_KEY_PATTERN = (
    r"^[ \t\r\n]*-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----\r?\n((?:[A-Za-z0-9-]+:[ -~]*\r?\n)*)(?:\r?\n)?"
    r"([A-Za-z0-9+/=\r\n]+)-----END \1PRIVATE KEY-----[ \t\r\n]*$"
)
PRIVATE_KEY_BLOCK = re.compile(PRIVATE_KEY_PATTERN)
OPENSSH_MAGIC = b"openssh-key-v1\x00"
NOT_A_KEY = "does not parse: give one OpenSSH or PEM private key, from its BEGIN line to its END line"
UNREADABLE_ENCRYPTION = (
    "is encrypted in a way that cannot be read here (only PKCS#8 with PBKDF2 or an older PKCS scheme, and PEM's "
    "own encryption): give it encrypted with `openssl pkcs8 -topk8 -v2 aes-256-cbc`, or unencrypted"
)
# OpenSSH's own encryption needs the bcrypt package, which this service does not carry.
OPENSSH_ENCRYPTED = "is an encrypted OpenSSH key, which cannot be read here: give it as PEM (PKCS#8) or unencrypted"
ENCRYPTED_WITHOUT_ONE = "Passphrase must be specified"  # asyncssh's words for an encrypted key without one

# One thread per process opens keys: whatever a tenant sends, key work keeps at most one core busy.
KEY_WORK = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssh-keys")


class Oid:
    """The PKCS#5 algorithms asyncssh reads (dotted names, for `match`)."""

    PBES2 = ObjectIdentifier("1.2.840.113549.1.5.13")
    PBKDF2 = ObjectIdentifier("1.2.840.113549.1.5.12")


class UnreadableKey(ValueError):
    """A key that cannot be opened, in words that never quote it; `field` is `private_key` or `passphrase`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def derivation_problem(key: str) -> str | None:
    """Why this key cannot be opened here or would cost too much to, read from its own structure before anything
    is derived (microseconds); None when it is unencrypted or its derivation is within the bounds."""
    block = PRIVATE_KEY_BLOCK.fullmatch(key)
    if block is None:
        return NOT_A_KEY
    try:
        data = binascii.a2b_base64(block[3])
        if block[1] == "OPENSSH ":
            return openssh_problem(data)
        if block[1] == "ENCRYPTED ":
            return pkcs8_problem(data)
    except (ValueError, RecursionError):  # binascii, ASN.1 and SSH packet errors are ValueErrors
        return NOT_A_KEY
    return None  # unencrypted, or PEM's own encryption (one MD5 round)


def pkcs8_problem(der: bytes) -> str | None:
    """An EncryptedPrivateKeyInfo as asyncssh reads it: PBES2 with PBKDF2 (salt, iterations, …), or a PKCS#5 v1.5
    or PKCS#12 scheme (salt, iterations). Anything else (scrypt among them) asyncssh cannot decrypt."""
    match der_decode(der):
        case ((Oid.PBES2, ((Oid.PBKDF2, (bytes(), int() as iterations, *_)), _)), bytes()):
            return cost_problem(iterations, MAX_PBKDF2_ITERATIONS, DEFAULT_ITERATIONS, "PBKDF2 iterations")
        case ((ObjectIdentifier(), (bytes(), int() as iterations)), bytes()):
            return cost_problem(iterations, MAX_LEGACY_ITERATIONS, DEFAULT_ITERATIONS, "iterations")
    return UNREADABLE_ENCRYPTION


def openssh_problem(blob: bytes) -> str | None:
    """OpenSSH's format: `openssh-key-v1`, then the cipher, the KDF and its options (bcrypt's salt and rounds)."""
    if not blob.startswith(OPENSSH_MAGIC):
        return NOT_A_KEY
    packet = SSHPacket(blob[len(OPENSSH_MAGIC) :])
    cipher, kdf, options = packet.get_string(), packet.get_string(), packet.get_string()
    if cipher == b"none":
        return None
    if kdf != b"bcrypt":
        return OPENSSH_ENCRYPTED
    bcrypt = SSHPacket(options)
    bcrypt.get_string()  # the salt
    return cost_problem(bcrypt.get_uint32(), MAX_BCRYPT_ROUNDS, DEFAULT_BCRYPT_ROUNDS, "bcrypt rounds")


def cost_problem(work: int, limit: int, default: int, unit: str) -> str | None:
    if 1 <= work <= limit:
        return None
    return (
        f"asks for {work:,} {unit} to be decrypted, where 1 to {limit:,} are accepted ({default:,} by default): "
        "encrypt it again with fewer"
    )


async def opened_private_key(key: str, passphrase: str | None) -> str:
    """The key decrypted and checked, as unencrypted OpenSSH text, opened in the key thread (its derivation must
    be within the bounds: `derivation_problem`); raises UnreadableKey."""
    return await asyncio.get_running_loop().run_in_executor(KEY_WORK, partial(_opened, key, passphrase))


async def signing_key(key: str, passphrase: str | None) -> asyncssh.SSHKey:
    """A stored key, to sign in with: checked when it was given, so read without checking it again."""
    return await asyncio.get_running_loop().run_in_executor(KEY_WORK, partial(imported, key, passphrase, False))


def _opened(key: str, passphrase: str | None) -> str:
    opened = imported(key, passphrase, checked=False)
    bits = getattr(opened.pyca_key, "key_size", 0)  # RSA and DSA; Ed25519 keys have a fixed size
    if bits > MAX_KEY_BITS:
        raise UnreadableKey(
            "private_key",
            f"is a {bits:,}-bit key: at most {MAX_KEY_BITS:,} bits are accepted (use RSA 4,096 or Ed25519)",
        )
    plain = opened.export_private_key("openssh")
    imported(plain.decode(), None, checked=True)  # an RSA key's numbers, checked once (bounded by its size)
    return plain.decode()


def imported(key: str, passphrase: str | None, checked: bool) -> asyncssh.SSHKey:
    """asyncssh's reading of the key; its refusals (and a panic of the `cryptography` package) as UnreadableKey."""
    try:
        return asyncssh.import_private_key(key, passphrase, unsafe_skip_rsa_key_validation=not checked)
    except asyncssh.KeyEncryptionError:
        raise UnreadableKey("private_key", OPENSSH_ENCRYPTED) from None
    except (asyncssh.KeyImportError, ValueError) as exc:
        if ENCRYPTED_WITHOUT_ONE in str(exc):
            raise UnreadableKey("passphrase", "private_key is encrypted: give its passphrase") from None
        if "decrypt" in str(exc):
            raise UnreadableKey("passphrase", "private_key does not decrypt with this passphrase") from None
        raise UnreadableKey("private_key", NOT_A_KEY) from None
    except BaseException as exc:
        if not is_panic(exc):
            raise
        raise UnreadableKey("private_key", NOT_A_KEY) from None


def is_panic(error: BaseException) -> bool:
    """pyo3's PanicException: Rust code (the `cryptography` package's) that failed; a BaseException no module
    exports, so it is known by its name."""
    kind = type(error)
    return (kind.__module__, kind.__name__) == ("pyo3_runtime", "PanicException")
