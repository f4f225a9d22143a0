"""Public keys pinned in the app at build time."""

from __future__ import annotations

import base64
import binascii
from typing import Dict, Iterator, Mapping, Optional, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import ConfigurationError

#: Values accepted for a pinned key: standard base64 of the 32 raw bytes (as
#: ``GET /v1/public/tenants/{id}/signing-keys`` lists it), the raw bytes, or a key object.
KeyLike = Union[str, bytes, Ed25519PublicKey]

# Ed25519 points of small order (their encodings; y = 0, 1, -1 and the order-8 points, each
# with and without the sign bit where it exists). A signature "by" such a key can be forged for
# many messages; the Rust client's strict verification refuses them, and so does this one.
_SMALL_ORDER = {
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "0100000000000000000000000000000000000000000000000000000000000080",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    )
}

# The group order L, little-endian: a signature whose S is not below L is not canonical.
_L = 2**252 + 27742317777372353535851937790883648493


def _decode_key(kid: str, value: KeyLike) -> Ed25519PublicKey:
    if isinstance(value, Ed25519PublicKey):
        raw = value.public_bytes(Encoding.Raw, PublicFormat.Raw)
    elif isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError(f"public key {kid!r} is not base64") from None
    else:
        raise ConfigurationError(f"public key {kid!r} is neither base64 text, bytes nor a key")
    if len(raw) != 32:
        raise ConfigurationError(f"public key {kid!r} is not a 32-byte Ed25519 public key")
    if raw in _SMALL_ORDER:
        raise ConfigurationError(f"public key {kid!r} is a small-order point")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ConfigurationError(
            f"public key {kid!r} is not a 32-byte Ed25519 public key"
        ) from None


class PinnedKeys(Mapping[str, Ed25519PublicKey]):
    """The tenant's Ed25519 public keys, by key id (``v1``, ``v2``, ...).

    Copy them into the app at build time from ``GET /v1/public/tenants/{tenant}/signing-keys``;
    they are never fetched at run time (a key the app does not ship cannot vouch for anything).
    Keep ``v1`` and every retired key pinned.
    """

    def __init__(self, keys: Optional[Mapping[str, KeyLike]] = None) -> None:
        self._keys: Dict[str, Ed25519PublicKey] = {}
        self._raw: Dict[str, bytes] = {}
        for kid, value in (keys or {}).items():
            self.pin(kid, value)

    def pin(self, kid: str, value: KeyLike) -> None:
        """Pins ``value`` under ``kid`` (replacing a key pinned under the same id)."""
        if not isinstance(kid, str) or not kid:
            raise ConfigurationError("a pinned key needs a non-empty key id such as 'v1'")
        key = _decode_key(kid, value)
        self._keys[kid] = key
        self._raw[kid] = key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    def __getitem__(self, kid: str) -> Ed25519PublicKey:
        return self._keys[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        shown = {kid: base64.b64encode(self._raw[kid]).decode() for kid in self}
        return f"PinnedKeys({shown!r})"

    def verify(self, kid: str, message: bytes, signature: bytes) -> Optional[bool]:
        """``True`` when ``signature`` by the key pinned under ``kid`` verifies over ``message``,
        ``False`` when it does not, ``None`` when no key is pinned under ``kid``.

        Strict, like the Rust client: a signature must be 64 bytes with a canonical ``S``.
        """
        key = self._keys.get(kid)
        if key is None:
            return None
        if len(signature) != 64 or int.from_bytes(signature[32:], "little") >= _L:
            return False
        if signature[:32] in _SMALL_ORDER:
            return False
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def pinned(keys: Union[PinnedKeys, Mapping[str, KeyLike]]) -> PinnedKeys:
    """``keys`` as :class:`PinnedKeys` (a mapping of ``kid`` to base64 is converted)."""
    return keys if isinstance(keys, PinnedKeys) else PinnedKeys(keys)
