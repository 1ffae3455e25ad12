"""Restate the claim of recorded one-step canary audits of Gaussian steps (DP-SGD and
DP-FRePo per step) with the step's exact epsilon, ``mi_defense.auditing.canary.one_step_epsilon``.

The claim of one step is a function of its noise multiplier and delta alone; audits recorded
before the exact curve was used carry the looser RDP bound of that step. This rewrites
``claimed_epsilon`` and ``caught`` of those rows (the trials and the lower bound are
unchanged) and leaves every other row as it is.

Usage: python reports/canaries/exact_claims.py FILE.json ...   (a canaries.json list, or one result)
"""
import json
import sys
from pathlib import Path

from mi_defense.auditing.canary import one_step_epsilon
from mi_defense.io import write_json

GAUSSIAN_STEPS = ("dpsgd", "dp-frepo")  # dp-frepo-once already states its exact epsilon


def restate(row: dict) -> bool:
    if "canaries" in row or row.get("mechanism") not in GAUSSIAN_STEPS:
        return False
    claim = one_step_epsilon(row["noise_multiplier"], row["delta"])
    changed = claim != row["claimed_epsilon"]
    row["claimed_epsilon"], row["caught"] = claim, row["audited_epsilon_lower_bound"] > claim
    return changed


def main(paths):
    for path in map(Path, paths):
        data = json.loads(path.read_text())
        rows = data if isinstance(data, list) else [data]
        n = sum(restate(r) for r in rows)
        write_json(path, data)
        print(f"{path}: {n} claim(s) restated")


if __name__ == "__main__":
    main(sys.argv[1:])
