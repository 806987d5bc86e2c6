"""The Ed25519 key that signs tree heads: kept in a file, never in the event store."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.domain.errors import InvalidInputError, LedgerError
from ledger.settings import KAPOK_SIGNING_KEY_FILE


class SigningKeyError(LedgerError, InvalidInputError):
    pass


def signing_key_file(environ=None) -> Path:
    """``KAPOK_SIGNING_KEY_FILE``: where the private key is kept."""
    return KAPOK_SIGNING_KEY_FILE.read(environ)


def public_key_file(private_key_file: Path) -> Path:
    """Where the public half is published, beside the private key."""
    return private_key_file.with_name(private_key_file.stem + ".pub.pem")


def raw_public_key(public_pem: bytes) -> bytes:
    """The 32 bytes of an Ed25519 public key given in PEM; raises SigningKeyError."""
    try:
        key = serialization.load_pem_public_key(public_pem)
    except ValueError as error:
        raise SigningKeyError(f"not a PEM public key: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError("the public key is not an Ed25519 key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_verifies(public_raw: bytes, message: bytes, signature: bytes) -> bool:
    """True if ``signature`` is the Ed25519 signature of ``message`` by that key."""
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def new_ed25519_seed() -> bytes:
    """The 32-byte seed of a new Ed25519 private key (RFC 8032)."""
    return Ed25519PrivateKey.generate().private_bytes_raw()


def ed25519_public_of(seed: bytes) -> bytes:
    """The 32-byte public key of an Ed25519 seed."""
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def key_id(public_pem: bytes) -> str:
    return hashlib.sha256(public_pem).hexdigest()[:16]


class SigningKey:
    def __init__(self, private_key: Ed25519PrivateKey):
        self._key = private_key
        self.public_pem = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = key_id(self.public_pem)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Raises SigningKeyError if the file is missing or not an Ed25519 private key."""
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except FileNotFoundError:
            raise SigningKeyError(
                f"no signing key at {path}: run `kapok audit keygen` or set KAPOK_SIGNING_KEY_FILE"
            ) from None
        except (ValueError, TypeError) as error:
            raise SigningKeyError(f"{path} is not a PEM private key: {error}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{path} is not an Ed25519 key")
        return cls(key)


def generate_key(path: Path, overwrite: bool = False) -> Path:
    """Writes a new private key (mode 0600) and its public key beside it; returns the latter."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise SigningKeyError(f"{path} exists; refusing to replace a signing key")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    public = public_key_file(path)
    public.write_bytes(SigningKey(key).public_pem)
    return public


def load_public_key(path: Path) -> bytes:
    """The PEM public key at ``path``; a private key file gives its public half."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise SigningKeyError(f"cannot read public key {path}: {error.strerror}") from None
    if b"PRIVATE KEY" in data:
        return SigningKey.load(path).public_pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise SigningKeyError(f"{path} is not a PEM public key: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path} is not an Ed25519 public key")
    return data



def published_public_key(environ=None) -> bytes:
    """The public key beside the configured signing key (or the signing key's own public
    half). Raises SigningKeyError if neither can be read."""
    private = signing_key_file(environ)
    published = public_key_file(private)
    return load_public_key(published if published.exists() else private)
