"""Atomic file writes and run provenance.

Every artifact is written to a temporary name in its destination folder and renamed
into place, so a killed process never leaves a half-written file behind.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


def _write_error(path: Path, exc: OSError):
    from mi_defense.errors import UserError

    return UserError(f"cannot write {path} ({exc.strerror or exc}); choose a writable folder with free space")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary name carries the writer's process id, so ``clean_stale_temp`` can remove
    what a killed writer left without touching another live writer's file. A write that
    fails (read-only folder, full disk, a file where a folder should be) is a one-line
    ``UserError`` and leaves nothing behind."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; artifacts are ordinary files
        os.replace(tmp_path, path)
    except OSError as exc:
        raise _write_error(path, exc) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def clean_stale_temp(folder) -> int:
    """Remove temporary files that ``atomic_path`` writers killed mid-write left in
    ``folder`` and its sub-folders (those whose process is gone); return how many."""
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for p in folder.rglob(".*.tmp"):
        parts = p.name.rsplit(".", 3)  # .<name>.<pid>.<random>.tmp
        try:
            pid = int(parts[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _as_path(path, option: str, kind: str, example: str) -> Path:
    """``path`` as a ``Path``; a one-line error when it is not one (None, a number, empty)."""
    from mi_defense.errors import UserError

    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise UserError(f"{option} {path!r} is not a {kind} path; give one, e.g. '{example}'")
    return Path(path)


def check_writable_dir(path, option: str = "--out") -> Path:
    """Fail early, before any work, when ``path`` cannot hold the outputs."""
    from mi_defense.errors import UserError

    p = _as_path(path, option, "folder", "audit-out")
    if p.exists() and not p.is_dir():
        raise UserError(f"{option} {p} is a file, not a folder; choose a folder path")
    existing = p
    while not existing.exists():  # nothing is created here: the first existing ancestor must be a writable folder
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{option} {p} lies under {existing}, which is a file; choose a folder path")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".write-probe.{os.getpid()}.", suffix=".tmp", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{option} {p}: cannot write in {existing} ({exc.strerror or exc}); choose a writable "
                        "folder") from None
    return p


def check_writable_file(path, option: str = "--json") -> Path:
    """Fail early when the file ``path`` could not be written (checked in its folder)."""
    from mi_defense.errors import UserError

    p = _as_path(path, option, "file", "results.json")
    if p.is_dir():
        raise UserError(f"{option} {p} is a folder; give a file path")
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{option} {p} lies under {parent}, which is a file; choose a file path in a folder")
    check_writable_dir(p.parent, option)
    return p


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def strict(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf) replaced by ``None``: JSON has no
    spelling for them, and ``NaN``/``Infinity`` tokens make a file other parsers reject."""
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def to_json(obj: Any) -> str:
    """Strict JSON (RFC 8259): non-finite numbers are written as ``null``."""
    return json.dumps(strict(obj), indent=2, sort_keys=False, default=_json_default, allow_nan=False) + "\n"


def write_json(path, obj: Any) -> None:
    write_text(path, to_json(obj))


def read_json(path, what: str = "file"):
    """Parse a JSON file; a missing, unreadable or corrupt file is a one-line ``UserError``."""
    from mi_defense.errors import UserError

    p = Path(path)
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{p}: {what} is not readable JSON ({exc}); delete it or pass a valid file") from None


# What numpy raises on a truncated or corrupt .npz (a zip archive).
NPZ_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)


def write_npz(path, compressed: bool = False, **arrays) -> None:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    write_bytes(path, buf.getvalue())


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_array(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def package_versions() -> dict:
    """Versions of Python and of every package that shapes a result."""
    from importlib import metadata

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("mi-defense", "tensorflow", "tensorflow-privacy", "dp-accounting", "numpy", "scipy", "scikit-learn",
                 "matplotlib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
