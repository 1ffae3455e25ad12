"""The Makefile picks a Python that TensorFlow 2.15.1 supports, or says how to get one."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")


def _fake(bin_dir: Path, name: str, version: str) -> None:
    p = bin_dir / name
    p.write_text(f"#!/bin/sh\necho {version}\n")
    p.chmod(0o755)


def _print_python(tmp_path, fakes):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, version in fakes.items():
        _fake(bin_dir, name, version)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    return subprocess.run([MAKE, "-s", "-C", str(ROOT), "print-python"], env=env, capture_output=True, text=True)


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
@pytest.mark.parametrize("fakes,chosen", [
    ({"python3": "3.12", "python3.10": "3.10"}, "python3.10"),
    ({"python3": "3.11"}, "python3"),
    ({"python3": "3.13", "python3.11": "3.11", "python3.9": "3.9"}, "python3.11"),
])
def test_newest_supported_interpreter_is_chosen(tmp_path, fakes, chosen):
    r = _print_python(tmp_path, fakes)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == chosen


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_only_an_unsupported_python_stops_with_one_line(tmp_path):
    r = _print_python(tmp_path, {"python3": "3.12"})
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "uv python install 3.11" in lines[0]
