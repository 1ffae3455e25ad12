"""The reference audits' committed runs (reports/<dataset>-cpu/cache) still fit the code.

Every trained run of a reference audit is committed so that any attack re-scores without
training and a partial audit continues on another machine (reports/run-reference-audits.sh).
A change to a defense's resolved settings, to the split or to the reference halves would
silently turn those files stale and cost hours of retraining; here the audit itself is asked
which committed runs it would reuse, and every one must be."""
from pathlib import Path

import numpy as np
import pytest

from mi_defense.auditing.core import Audit
from mi_defense.config import resolve_audit_config
from tests.conftest import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("fashion_mnist", "mnist")


def rows(name):
    """The defenses of a reference audit: reports/<dataset>-cpu/defenses.txt when present (as
    run-reference-audits.sh reads it), else None (the configuration's list)."""
    listed = ROOT / "reports" / f"{name}-cpu" / "defenses.txt"
    return tuple(listed.read_text().split()) if listed.is_file() else None


@pytest.mark.parametrize("name", DATASETS)
def test_committed_runs_are_reused(name, tmp_path):
    cache = ROOT / "reports" / f"{name}-cpu" / "cache"
    # the runs (scores.npz beside them holds the attack scores of a scoring pass, not committed)
    committed = sorted(p.relative_to(cache) for p in cache.glob("*/*.npz") if p.name != "scores.npz")
    if not committed:
        pytest.skip(f"no run of the {name} reference audit is committed in {cache}")
    shared_data_dir(name)
    cfg = resolve_audit_config("quick", ROOT / "reports" / "cpu-reference.toml", dataset=name, defenses=rows(name))
    (tmp_path / "cache").symlink_to(cache)
    audit = Audit(cfg, tmp_path, progress=False, log=lambda s: None)
    todo, total = audit.todo()
    assert total == 17 * len(audit.specs)
    wanted = {audit.cache.path(s, r).relative_to(audit.cache.root) for s, r in audit.jobs()}
    assert set(committed) <= wanted, f"committed runs no audit job asks for: {sorted(set(committed) - wanted)}"
    assert len(todo) == total - len(committed), "committed runs the audit would train again: " + ", ".join(
        f"{s} {r}" for s, r in todo if audit.cache.has(s, r))
    for s, r in audit.jobs():
        if audit.cache.has(s, r):
            assert np.isfinite(audit._load(s, r)["logits"]).all()  # loads: settings and examples fit, numbers finite
