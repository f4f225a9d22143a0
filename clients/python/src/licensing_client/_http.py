"""A minimal HTTP/1.1 exchange on the standard library: one request, exact bytes, no redirects."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import Dict, Optional, Tuple
from urllib.parse import quote, urlsplit

from .errors import ConfigurationError, TransportError


@dataclass(frozen=True)
class BaseUrl:
    scheme: str
    host: str
    port: Optional[int]
    #: The path prefix without a trailing slash ("" or "/stage").
    prefix: str

    def path(self, segments: Tuple[str, ...]) -> str:
        """``prefix/v1/integration/<segments>``, each segment percent-encoded."""
        return self.prefix + "/" + "/".join(quote(s, safe="") for s in segments)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_base_url(text: str) -> BaseUrl:
    """``https://``, or ``http://`` to a loopback host (local testing); no query or fragment;
    a path prefix (a stage name) is kept."""
    if not isinstance(text, str) or not text:
        raise ConfigurationError("no server URL")
    parts = urlsplit(text)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigurationError(f"server URL {text!r} must be https://host[:port][/prefix]")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigurationError(
            f"server URL {text!r} must be https:// (http:// only to a loopback address)"
        )
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise ConfigurationError(f"server URL {text!r} has a query or fragment")
    if parts.username or parts.password:
        raise ConfigurationError(f"server URL {text!r} must not carry credentials")
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"server URL {text!r} has a bad port") from None
    return BaseUrl(parts.scheme, host, port, parts.path.rstrip("/"))


@dataclass(frozen=True)
class RawAnswer:
    status: int
    #: Header names lower-cased; a repeated header keeps its first value... except that a
    #: repeated signature header is refused by the caller (``repeated``).
    headers: Dict[str, str]
    repeated: Tuple[str, ...]
    body: bytes


def exchange(
    base: BaseUrl,
    method: str,
    path: str,
    headers: Dict[str, str],
    body: Optional[bytes],
    timeout: float,
    ssl_context: Optional[ssl.SSLContext] = None,
) -> RawAnswer:
    """Sends one request and reads the whole answer. Raises :class:`TransportError` when the
    exchange does not complete."""
    conn: http.client.HTTPConnection
    if base.scheme == "https":
        conn = http.client.HTTPSConnection(
            base.host,
            base.port,
            timeout=timeout,
            context=ssl_context or ssl.create_default_context(),
        )
    else:
        conn = http.client.HTTPConnection(base.host, base.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        seen: Dict[str, str] = {}
        repeated = []
        for name, value in response.getheaders():
            key = name.lower()
            if key in seen:
                repeated.append(key)
                continue
            seen[key] = value
        return RawAnswer(response.status, seen, tuple(repeated), data)
    except (OSError, http.client.HTTPException, socket.timeout) as e:
        raise TransportError(
            f"cannot reach the licensing service at {base.scheme}://{base.host}: "
            f"{type(e).__name__}: {e}"
        ) from e
    finally:
        conn.close()
