"""y-webrtc's signaling encryption, byte-compatible with ``y-webrtc/src/crypto.js``.

Key = PBKDF2-HMAC-SHA256(password, salt = room name, 100,000 iterations, 32 bytes), used as an
AES-256-GCM key. An encrypted payload is the lib0 envelope
``varString("AES-GCM") • varUint8Array(iv[12]) • varUint8Array(ciphertext ‖ tag)``; the
plaintext is a lib0 ``writeAny`` encoding; on the signaling wire it travels as standard base64.

Example:
    >>> key = derive_key("secret", "room")
    >>> open_payload(seal_payload({"type": "announce", "from": "p"}, key), key)
    {'type': 'announce', 'from': 'p'}
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from collab.errors import ProtocolError
from collab.lib0 import Decoder, Encoder, decode_any, encode_any, utf8_encode

__all__ = [
    "PBKDF2_ITERATIONS",
    "decrypt",
    "decrypt_json",
    "derive_key",
    "encrypt",
    "encrypt_json",
    "open_payload",
    "seal_payload",
]

PBKDF2_ITERATIONS: Final = 100_000
_ALGORITHM: Final = "AES-GCM"
_IV_BYTES: Final = 12


@functools.lru_cache(maxsize=256)
def derive_key(password: str, room: str) -> bytes:
    """Derive the 32-byte AES key y-webrtc uses for ``room`` with ``password`` (cached).

    Example:
        >>> len(derive_key("pw", "room"))
        32
    """
    return hashlib.pbkdf2_hmac(
        "sha256", utf8_encode(password), utf8_encode(room), PBKDF2_ITERATIONS, 32
    )


def encrypt(data: bytes, key: bytes) -> bytes:
    """Encrypt ``data`` into y-webrtc's AES-GCM envelope (fresh random 12-byte IV)."""
    iv = os.urandom(_IV_BYTES)
    cipher = AESGCM(key).encrypt(iv, data, None)
    encoder = Encoder()
    encoder.write_var_string(_ALGORITHM)
    encoder.write_var_uint8_array(iv)
    encoder.write_var_uint8_array(cipher)
    return encoder.to_bytes()


def decrypt(envelope: bytes, key: bytes) -> bytes:
    """Decrypt a y-webrtc AES-GCM envelope.

    Raises:
        ProtocolError: ``bad-envelope`` (malformed or not AES-GCM) or ``bad-key``
            (authentication failed: wrong password or tampered data).
    """
    try:
        decoder = Decoder(envelope)
        algorithm = decoder.read_var_string()
        iv = decoder.read_var_uint8_array()
        cipher = decoder.read_var_uint8_array()
        decoder.expect_done()
    except ProtocolError as e:
        raise ProtocolError("bad-envelope", str(e)) from None
    if algorithm != _ALGORITHM:
        raise ProtocolError("bad-envelope", f"unknown algorithm {algorithm!r}")
    if len(iv) != _IV_BYTES:
        raise ProtocolError("bad-envelope", f"IV of {len(iv)} bytes")
    try:
        return AESGCM(key).decrypt(iv, cipher, None)
    except InvalidTag:
        raise ProtocolError("bad-key", "AES-GCM authentication failed") from None


def encrypt_json(value: Any, key: bytes) -> bytes:
    """``encrypt(writeAny(value))`` — y-webrtc's ``encryptJson``."""
    return encrypt(encode_any(value), key)


def decrypt_json(envelope: bytes, key: bytes) -> Any:
    """``readAny(decrypt(envelope))`` — y-webrtc's ``decryptJson``."""
    return decode_any(decrypt(envelope, key))


def seal_payload(value: Any, key: bytes) -> str:
    """Encrypt a signaling payload the way y-webrtc puts it in ``publish.data`` (base64 text)."""
    return base64.b64encode(encrypt_json(value, key)).decode("ascii")


def open_payload(data: str, key: bytes) -> Any:
    """Decrypt a base64 ``publish.data`` payload from an encrypted y-webrtc room.

    Raises:
        ProtocolError: ``bad-base64``, ``bad-envelope``, ``bad-key`` or a ``readAny`` error.
    """
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ProtocolError("bad-base64", str(e)) from None
    return decrypt_json(raw, key)
