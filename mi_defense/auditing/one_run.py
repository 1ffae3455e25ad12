"""End-to-end canary audit of a whole defense from one training run.

"Privacy Auditing with One (1) Training Run" (Steinke, Nasr & Jagielski, NeurIPS 2023):

1. draw ``m`` canaries disjoint from the members: training images given a wrong label
   (``mislabelled``: ``y' = (y + k) mod C``, ``k`` uniform in ``1..C-1``) or uniform-noise
   images with a random label (``noise``);
2. include each canary in the training set independently with probability 1/2 (the
   inclusion vector ``S`` is the audit's randomness, recorded with the result);
3. run the defense once, end to end (DP-SGD's training; for FRePo, distillation and then
   training on the release), on the members plus the included canaries;
4. score every canary by the released model's log-likelihood of its canary label, and
   guess "included" for the ``k`` highest scores and "excluded" for the ``k`` lowest (``k``
   fixed before any score is seen);
5. the number of right guesses gives the paper's epsilon lower bound
   (``attacks.one_run``), valid although every canary shares one run because the
   inclusions are independent.

A correct (epsilon, delta)-DP defense keeps the bound below its claim with probability at
least the confidence. The bound is black-box (only the final model is queried) and one
run is weak evidence for a correct mechanism; its use is the other direction: a defense
that does not keep its claim (``broken="noise"``: the DP-SGD defenses trained with noise
multiplier 0 while still stating the calibrated epsilon) is caught once the canaries are
memorised, which a test shows.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from mi_defense.errors import UserError

KINDS = ("mislabelled", "noise")
BREAKABLE = ("dpsgd", "dpsgd-linear")


@dataclass(frozen=True)
class OneRunAudit:
    """The result of a one-run canary audit (``to_json`` for ``--json`` and the report)."""

    defense: str
    dataset: str
    claimed_epsilon: Optional[float]          # the defense's accounted epsilon (None: no DP claim)
    delta: float
    audited_epsilon_lower_bound: float
    confidence: float
    canaries: int
    kind: str
    guesses: int                              # k included and k excluded guesses
    right: int                                # right guesses out of 2 k
    members: int
    test_accuracy: float
    broken: Optional[str]
    seed: int
    seconds: float

    @property
    def caught(self) -> bool:
        return self.claimed_epsilon is not None and self.audited_epsilon_lower_bound > self.claimed_epsilon

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "caught": self.caught,
                "audit": "one training run, each canary included with probability 1/2, black-box score "
                         "(log-likelihood of the canary label), k highest guessed in and k lowest out; "
                         "bound of Steinke, Nasr & Jagielski 2023"}


def make_canaries(x_pool: np.ndarray, y_pool: np.ndarray, num_classes: int, m: int, kind: str, rng):
    """``m`` canaries ``(x, y, positions)`` from the images ``x_pool`` (none of them members):
    relabelled to a wrong class, or replaced by uniform noise in the pool's pixel range with
    a random label; ``positions`` are the pool images used (kept out of any test set)."""
    if kind not in KINDS:
        raise UserError(f"canary kind '{kind}' unknown; use {' or '.join(KINDS)}")
    if m > len(x_pool):
        raise UserError(f"{m} canaries asked, {len(x_pool)} images lie outside the members; "
                        "lower --canaries or --members")
    pick = rng.choice(len(x_pool), m, replace=False)
    if kind == "mislabelled":
        return x_pool[pick], (y_pool[pick] + rng.integers(1, num_classes, m)) % num_classes, pick
    hi = 255 if x_pool.dtype == np.uint8 else float(np.max(x_pool))
    lo = 0 if x_pool.dtype == np.uint8 else float(np.min(x_pool))
    x = rng.uniform(lo, hi, (m,) + x_pool.shape[1:])
    return x.astype(x_pool.dtype), rng.integers(0, num_classes, m), pick


@contextlib.contextmanager
def _without_noise(spec):
    """DP-SGD trained with noise multiplier 0 inside the defense's real loop, still stating the calibrated epsilon."""
    from mi_defense.defenses import dpsgd

    if spec.name not in BREAKABLE:
        raise UserError(f"--break noise applies to {' and '.join(BREAKABLE)}, not to {spec.name}")
    saved = dpsgd.DPSGD.noise_scale
    dpsgd.DPSGD.noise_scale = 0.0
    try:
        yield
    finally:
        dpsgd.DPSGD.noise_scale = saved


def audit_one_run(defense: str, cfg, canaries: int = 1000, kind: str = "mislabelled", guesses: Optional[int] = None,
                  broken: Optional[str] = None, confidence: float = 0.95, log=print) -> OneRunAudit:
    """One-run canary audit of ``defense`` (a spec such as ``dpsgd-linear:eps=1``) with the
    data, members, seed and training settings of the audit configuration ``cfg``; ``guesses``
    (k, default ``canaries // 10``) included and as many excluded guesses."""
    from attacks.one_run import audit_one_run as bound
    from attacks.signals import cross_entropy
    from mi_defense.accounting import dp_delta
    from mi_defense.auditing.inputs import audit_transform
    from mi_defense.data import load_dataset
    from mi_defense.config import DefenseSpec
    from mi_defense.defenses import DefenseContext, make_defense
    from mi_defense.training.evaluate import accuracy, predict

    spec = DefenseSpec.parse(defense)
    k = canaries // 10 if guesses is None else guesses
    if canaries < 2 or not 1 <= k <= canaries // 2:
        raise UserError(f"{canaries} canaries with {k} guesses each way: "
                        "use at least 2 canaries and 1 <= guesses <= canaries / 2")
    if broken not in (None, "noise"):
        raise UserError(f"--break {broken!r} unknown; the one-run audit breaks only the noise (--break noise)")
    ds = load_dataset(cfg.dataset, cfg.data_dir)
    rng = np.random.default_rng([cfg.seed, 9176])
    n_members = cfg.members or min(len(ds.x_train) // 2, 1000)
    order = rng.permutation(len(ds.x_train))
    members, pool = np.sort(order[:n_members]), order[n_members:]
    cx, cy, used = make_canaries(ds.x_train[pool], ds.y_train[pool], ds.num_classes, canaries, kind, rng)
    included = rng.random(canaries) < 0.5
    transform = audit_transform(cfg.transform, ds.x_train, ds.input_shape, spec.claims_dp)
    ctx = DefenseContext(ds.num_classes, ds.input_shape, cfg.train, cfg.real_steps, cfg.distill,
                         real_recipe=cfg.real_recipe, fixed_normalisation=transform.is_fixed)
    x = transform(np.concatenate([ds.x_train[members], cx[included]]))
    y = np.concatenate([ds.y_train[members], cy[included]])
    log(f"one-run audit of {spec}: {n_members} members + {int(included.sum())} of {canaries} {kind} canaries")
    t0 = time.time()
    with _without_noise(spec) if broken else contextlib.nullcontext():
        result = make_defense(spec, ctx).fit(x, y, cfg.seed)
    scores = -cross_entropy(predict(result.model, transform(cx)).astype(np.float64), cy)
    meta = result.metadata
    delta = float(meta.get("delta") or dp_delta(len(x)))
    b = bound(scores, included, k, k, confidence, delta)
    if ds.x_test is not None:
        x_test, y_test = ds.x_test, ds.y_test
    else:  # the pool's images that are neither members nor canaries
        rest = np.delete(pool, used)
        if not len(rest):
            raise UserError(f"{cfg.dataset} has no test set and no image is left outside the members and "
                            "canaries; lower --canaries")
        x_test, y_test = ds.x_train[rest], ds.y_train[rest]
    acc = accuracy(result.model, transform(x_test), y_test)
    return OneRunAudit(str(spec), ds.name, meta.get("epsilon"), delta, b["value"], confidence, canaries, kind, k,
                       b["v"], n_members, acc, broken, cfg.seed, time.time() - t0)
