"""What fewer reference runs cost an attack: every reference attack re-scored from an
audit's ``signals.npz`` with a subset of its reference runs.

An audit trains its reference runs in complementary pairs (each example is IN exactly one
run of a pair), so a cheaper audit with ``k`` runs is simulated by drawing ``k / 2`` of the
pairs (``k = 1``: one run alone). For every count and attack the AUC and TPRs are averaged
over ``draws`` random subsets (mean and standard deviation over the draws), and each is
compared with the audit's strongest full-budget reference (LiRA online, as declared for 16+
references): the share of its AUC advantage ``AUC - 0.5`` a cheaper attack keeps. Nothing
is trained; the signals are the audit's own ("Membership Inference Attacks From First
Principles" for LiRA, "Low-Cost High-Power Membership Inference Attacks" for RMIA).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from mi_defense.errors import UserError
from mi_defense.io import write_json

ATTACKS = ("lira_online", "lira_online_fixed", "lira_offline", "lira_offline_fixed", "rmia", "rmia_online")
FULL = "lira_online"  # the yardstick: LiRA online with every reference run


def pairs_of(reference_in: np.ndarray) -> List[tuple]:
    """The complementary pairs of reference runs ``(m, k)``, ``reference_in[:, k] == ~reference_in[:, m]``;
    runs without a partner stand alone as ``(m,)``."""
    ref_in = np.asarray(reference_in, bool)
    left, out = list(range(ref_in.shape[1])), []
    while left:
        m = left.pop(0)
        k = next((k for k in left if np.array_equal(ref_in[:, k], ~ref_in[:, m])), None)
        if k is None:
            out.append((m,))
        else:
            left.remove(k)
            out.append((m, k))
    return out


def draw_runs(pairs: Sequence[tuple], k: int, rng: np.random.Generator) -> List[int]:
    """``k`` reference runs as an audit with ``k`` runs would have them: ``k // 2`` whole pairs,
    plus one run of another pair when ``k`` is odd."""
    order = rng.permutation(len(pairs))
    runs = [r for i in order[: k // 2] for r in pairs[i]]
    if k % 2:
        rest = [pairs[i] for i in order[k // 2:]]
        if not rest:
            raise UserError(f"cannot draw {k} reference runs from {sum(len(p) for p in pairs)}")
        runs.append(int(rng.choice(rest[0])))
    return runs[:k]


def bench_references(signals_path, defense: str = "none", counts: Sequence[int] = (1, 2, 4, 8), draws: int = 10,
                     attack_names: Sequence[str] = ATTACKS, seed: int = 0, fprs: Sequence[float] = (1e-3, 1e-2),
                     out: Optional[str] = None) -> dict:
    """AUC and TPR of every reference attack on ``defense``'s first target with ``counts``
    reference runs (mean and std over ``draws`` subsets) and with all of them."""
    import attacks
    from attacks.metrics import evaluate, fpr_key
    from mi_defense.auditing.signals import load

    sig = load(signals_path)
    if defense not in sig.defenses:
        raise UserError(f"no defense {defense} in {signals_path}; choose from {', '.join(sig.defenses)}")
    m = sig.reference_in.shape[1]
    if m < 2:
        raise UserError(f"{signals_path} holds {m} reference run(s); the comparison needs an audit with several")
    bad = [k for k in counts if not 1 <= k < m]
    if bad:
        raise UserError(f"reference counts {bad} are not between 1 and {m - 1} (the audit has {m})")
    d = sig.defenses[defense]
    pairs = pairs_of(sig.reference_in)

    def score(runs: List[int]) -> Dict[str, dict]:
        ref = attacks.ReferenceInputs(target=d.scaled_logit[:, 0], references=d.scaled_logit[:, 1:][:, runs],
                                      reference_in=sig.reference_in[:, runs], membership=sig.membership,
                                      labels=sig.labels, signal="logit")
        res = {}
        for name in attack_names:
            s, membership, _ = attacks.scores_for(name, reference=ref)
            r = evaluate(s, membership, fprs, bootstrap=0, name=name, roc_points=False)
            res[name] = {"auc": r["auc"], **{f"tpr_at_{fpr_key(f)}": r["tpr_at_fpr"][fpr_key(f)] for f in fprs}}
        return res

    full = score(list(range(m)))
    yardstick = full[FULL]["auc"] - 0.5
    strongest = max(full, key=lambda n: full[n]["auc"])
    best_full = full[strongest]["auc"] - 0.5
    rng = np.random.default_rng(seed)
    table = {}
    for k in counts:
        runs_drawn = [draw_runs(pairs, k, rng) for _ in range(draws)]
        per = [score(r) for r in runs_drawn]
        table[str(k)] = {}
        for name in attack_names:
            row = {}
            for metric in per[0][name]:
                v = np.array([p[name][metric] for p in per], float)
                row[metric] = {"mean": float(np.mean(v)), "std": float(np.std(v))}
            row["share_of_full_advantage"] = (row["auc"]["mean"] - 0.5) / yardstick if yardstick > 0 else None
            row["share_of_strongest_full_advantage"] = (row["auc"]["mean"] - 0.5) / best_full if best_full > 0 else None
            table[str(k)][name] = row
    result = {"signals": str(signals_path), "defense": defense, "references_in_audit": m, "draws": draws, "seed": seed,
              "yardstick": f"{FULL} with all {m} reference runs", "strongest_full": strongest, "full": full,
              "by_count": table, "n_members": int(sig.membership.sum()), "n_nonmembers": int((~sig.membership).sum())}
    if out:
        write_json(out, result)
    return result


def best_at(result: dict, k: int) -> tuple:
    """``(attack, share of the full-budget AUC advantage)`` of the strongest attack at ``k`` runs."""
    row = result["by_count"][str(k)]
    name = max(row, key=lambda n: row[n]["auc"]["mean"])
    return name, row[name]["share_of_full_advantage"]
