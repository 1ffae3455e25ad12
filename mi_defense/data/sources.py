"""Where dataset files come from: local copies first, then the canonical download.

Lookup order for a file-based dataset ``name``:

1. the directory given with ``--data-dir`` (as ``DIR/<name>/`` or ``DIR/`` itself),
2. ``$MI_DEFENSE_DATA`` (same layout),
3. ``~/.cache/mi_defense/<name>/``,
4. Debian's ``/usr/share/datasets/<debian-name>`` (``dataset-fashion-mnist``),
5. a download from the canonical source into the cache, verified by SHA-256.

Files may be stored gzip-compressed (``NAME.gz``) or plain (``NAME``); the checksum is
always that of the decompressed bytes, so any gzip framing is accepted.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from mi_defense.errors import DataError


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name, the SHA-256 of its bytes (decompressed, for files
    served gzipped), its URL."""

    name: str
    sha256: str
    url: str
    compressed: bool = True  # the URL serves NAME.gz


@dataclass(frozen=True)
class FileSet:
    name: str
    files: Tuple[RemoteFile, ...]
    debian_dirs: Tuple[str, ...] = field(default_factory=tuple)
    how_to: str = ""


_MNIST = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_ADULT = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/"

FILESETS: Dict[str, FileSet] = {
    "mnist": FileSet(
        "mnist",
        (
            RemoteFile("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                       _MNIST + "train-images-idx3-ubyte.gz"),
            RemoteFile("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                       _MNIST + "train-labels-idx1-ubyte.gz"),
            RemoteFile("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                       _MNIST + "t10k-images-idx3-ubyte.gz"),
            RemoteFile("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                       _MNIST + "t10k-labels-idx1-ubyte.gz"),
        ),
    ),
    "fashion_mnist": FileSet(
        "fashion_mnist",
        (
            RemoteFile("train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                       _FASHION + "train-images-idx3-ubyte.gz"),
            RemoteFile("train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                       _FASHION + "train-labels-idx1-ubyte.gz"),
            RemoteFile("t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                       _FASHION + "t10k-images-idx3-ubyte.gz"),
            RemoteFile("t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                       _FASHION + "t10k-labels-idx1-ubyte.gz"),
        ),
        debian_dirs=("/usr/share/datasets/fashion-mnist",),
        how_to="or install Debian's package: apt-get install dataset-fashion-mnist",
    ),
    "adult": FileSet(
        "adult",
        (
            RemoteFile("adult.data", "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
                       _ADULT + "adult.data", compressed=False),
            RemoteFile("adult.test", "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
                       _ADULT + "adult.test", compressed=False),
        ),
    ),
    "cifar10": FileSet(
        "cifar10",
        (
            # The tarball itself is verified (before anything in it is unpickled).
            RemoteFile("cifar-10-python.tar.gz", "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                       "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", compressed=False),
        ),
    ),
}


def cache_root() -> Path:
    return Path(os.path.expanduser("~")) / ".cache" / "mi_defense"


def candidate_dirs(name: str, data_dir: Optional[str] = None) -> List[Path]:
    """The directories searched for dataset ``name``, in order."""
    out: List[Path] = []
    for base in (data_dir, os.environ.get("MI_DEFENSE_DATA")):
        if base:
            out += [Path(base).expanduser() / name, Path(base).expanduser()]
    out.append(cache_root() / name)
    out += [Path(d) for d in FILESETS[name].debian_dirs] if name in FILESETS else []
    return out


def read_decompressed(path: Path, gunzip: Optional[bool] = None) -> bytes:
    """Read ``path``; gunzip it if ``gunzip`` (default: if it ends in ``.gz``). Corrupt
    archives raise DataError."""
    try:
        if path.suffix == ".gz" if gunzip is None else gunzip:
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read ({exc.__class__.__name__}: {exc}); the file is corrupt or truncated, "
                        "delete it and provide a fresh copy") from None


def _find_in(directory: Path, f: RemoteFile) -> Optional[Path]:
    for cand in (directory / (f.name + ".gz"), directory / f.name):
        if cand.is_file():
            return cand
    return None


def verify(path: Path, f: RemoteFile) -> bytes:
    """Return the bytes of file ``f`` read from ``path`` after checking their SHA-256.

    A gzip copy (``NAME.gz``) is decompressed first; a file whose canonical name is itself
    an archive (``cifar-10-python.tar.gz``) is checked as it is."""
    data = read_decompressed(path, gunzip=path.suffix == ".gz" and path.name != f.name)
    digest = hashlib.sha256(data).hexdigest()
    if digest != f.sha256:
        raise DataError(f"{path}: SHA-256 of the {f.name} bytes is {digest[:16]}..., expected {f.sha256[:16]}...; "
                        f"the file is not the canonical {f.name}: replace it")
    return data


def locate(name: str, data_dir: Optional[str] = None, download: bool = True) -> Dict[str, Tuple[Path, bytes]]:
    """Find every file of ``name``; return ``{file name: (path, verified bytes)}``.

    The first directory that holds *all* files wins. When none does, the files are
    downloaded into the cache (``download=True``); when that fails, one error lists
    every place searched and how to provide the files.
    """
    fs = FILESETS[name]
    dirs = candidate_dirs(name, data_dir)
    for d in dirs:
        found = [_find_in(d, f) for f in fs.files]
        if all(found):
            return {f.name: (p, verify(p, f)) for f, p in zip(fs.files, found)}
    if download:
        try:
            return download_fileset(name)
        except DataError as exc:
            reason = str(exc)
    else:
        reason = "download disabled"
    names = ", ".join(f.name + (".gz" if f.compressed else "") for f in fs.files)
    where = "; ".join(str(d) for d in dirs)
    extra = f", {fs.how_to}" if fs.how_to else ""
    raise DataError(
        f"dataset '{name}' not found (looked in: {where}) and the download failed ({reason}); "
        f"put {names} in one of those folders, "
        f"or pass --data-dir DIR / set MI_DEFENSE_DATA=DIR with DIR/{name}/ holding them{extra}"
    )


def _fetch(url: str, dest: Path, desc: str) -> None:
    from tqdm.auto import tqdm

    req = urllib.request.Request(url, headers={"User-Agent": "mi-defense"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with open(dest, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=desc, leave=False) as bar:
                while True:
                    chunk = resp.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
                    bar.update(len(chunk))
    except OSError as exc:
        raise DataError(f"cannot download {url}: {exc}") from None


def download_fileset(name: str, files: Sequence[RemoteFile] | None = None) -> Dict[str, Tuple[Path, bytes]]:
    """Download every file of ``name`` into the cache, verify, then move into place."""
    fs = FILESETS[name]
    target = cache_root() / name
    target.mkdir(parents=True, exist_ok=True)
    out = {}
    for f in files or fs.files:
        final = target / (f.name + (".gz" if f.compressed else ""))
        fd, tmp = tempfile.mkstemp(dir=target, prefix=f".{final.name}.", suffix=".part")
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            _fetch(f.url, tmp_path, f"{name}/{f.name}")
            renamed = tmp_path.with_name(tmp_path.name + (".gz" if f.compressed else ""))
            shutil.move(tmp_path, renamed)
            tmp_path = renamed
            data = verify(tmp_path, f)
            os.replace(tmp_path, final)
        finally:
            if tmp_path.exists():
                tmp_path.unlink()
        out[f.name] = (final, data)
    return out
