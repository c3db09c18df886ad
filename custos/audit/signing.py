"""Checkpoint signatures: Ed25519, the private key from a mounted secret, the public key
with the auditors. A signature covers a short statement naming the writer, the chain and
its head, so it cannot be moved to another chain or another point of the same one."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custos.errors import ConfigError

_RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def statement(writer: str, chain: str, head_sequence: int, head_hash: bytes, reason: str) -> bytes:
    """What a checkpoint signs. The reason is in it: a `count` checkpoint relabelled
    `shutdown` would make a cut tail look like a chain that was closed."""
    head = (str(head_sequence), head_hash.hex(), reason)
    return "\n".join(("custos-audit-checkpoint/v2", writer, chain, *head)).encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_key.public_bytes(*_RAW)).hexdigest()[:16]


class Signer:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.key_id = key_id(private_key.public_key())

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the signing key: {exc.strerror}") from exc
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{path}: the checkpoint signing key must be Ed25519")
        return cls(key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def load_public_keys(paths: list[Path]) -> dict[str, Ed25519PublicKey]:
    """The auditors' keys by id; a PEM file may hold one public key."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except ValueError as exc:
            raise ConfigError(f"{path}: not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError(f"{path}: not an Ed25519 public key")
        keys[key_id(key)] = key
    return keys


def signature_holds(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def generate_key_pair(private_path: Path, public_path: Path) -> str:
    """A new key pair in PEM files (the private one readable by its owner only); its id."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private_path.touch(mode=0o600, exist_ok=False)
    private_path.write_bytes(private)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key_id(key.public_key())
