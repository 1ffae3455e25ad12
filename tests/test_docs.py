"""The documentation's generated parts match the committed results, its links resolve, the
guides and the README hold no hand-copied percentage, and the site builds (strict)."""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A percentage: "96.4%", "87.03 %". The guides and the README take their measured figures
# from docs/generate.py's blocks; anywhere else a number written by hand goes stale.
PERCENTAGE = re.compile(r"\d+(\.\d+)?\s?%")


def _generate():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_pages_and_the_readme_table_match_the_committed_results():
    out = subprocess.run([sys.executable, "docs/generate.py", "--check"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr


def test_readme_is_short_and_every_relative_link_resolves():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for page in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith(("http://", "https://")):
                assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_no_percentage_in_the_guides_or_the_readme_outside_the_generated_blocks():
    generate = _generate()
    pages = [ROOT / "README.md", ROOT / "docs" / "index.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]
    found = []
    for page in pages:
        text = generate.without_generated_blocks(page, page.read_text())
        for line in text.splitlines():
            if PERCENTAGE.search(line):
                found.append(f"{page.relative_to(ROOT)}: {line.strip()}")
    assert not found, ("percentages written by hand (link the generated results page, or add a table to "
                       "docs/generate.py):\n" + "\n".join(found))


def test_the_percentage_check_sees_what_is_outside_the_blocks_only():
    generate = _generate()
    start, end = generate.block_markers(next(iter(generate.GUIDE_TABLES)))
    page = ROOT / generate.GUIDE_TABLES[next(iter(generate.GUIDE_TABLES))][0]
    text = f"before\n{start}\n| 96.4 % |\n{end}\nafter 12 %\n"
    kept = generate.without_generated_blocks(page, text)
    assert "96.4" not in kept and PERCENTAGE.search(kept).group(0) == "12 %"
    # another page's markers count for nothing
    assert generate.without_generated_blocks(ROOT / "docs" / "index.md", text) == text


def test_the_site_builds_strict_without_importing_the_package(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed: make docs installs the docs extra")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed: make docs installs the docs extra")
    pytest.importorskip("material", reason="mkdocs-material is not installed: make docs installs the docs extra")
    probe = ("import sys\n"
             "from mkdocs.commands.build import build\n"
             "from mkdocs.config import load_config\n"
             f"build(load_config('mkdocs.yml', strict=True, site_dir={str(tmp_path / 'site')!r}))\n"
             "assert not {'tensorflow', 'mi_defense'} & set(sys.modules), 'the docs build imported the package'\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stdout + out.stderr
    api = (tmp_path / "site" / "reference" / "python-api" / "index.html").read_text()
    for name in ("distill", "load_distilled", "audit", "report", "DistilledSet", "AuditResults"):
        assert f"id=\"{name}\"" in api or f".{name}\"" in api, f"the API reference lacks {name}"
