"""The offline license file's place in the cache directory, written atomically."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


def cache_path(cache_dir: PathLike, tenant_id: str, license_key: str) -> Path:
    """One file per (tenant, license), named by a hash so that the key is not in the name
    (the same name the Rust client uses)."""
    digest = hashlib.sha256(tenant_id.encode() + b"\x00" + license_key.encode()).hexdigest()
    return Path(cache_dir) / f"license-{digest[:32]}.lic"


def read_text(path: Path) -> Optional[str]:
    """The file's text, ``None`` when it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def write_atomically(path: Path, text: str) -> None:
    """Writes ``text`` to a new temporary file beside ``path``, flushes it to disk and renames
    it over ``path``: a reader sees the old file or the new one, never a part. Owner-only
    (the file holds the license key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    # Make the rename itself durable (POSIX; directories cannot be opened on Windows).
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
