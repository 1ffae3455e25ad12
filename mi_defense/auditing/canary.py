"""White-box canary audit of one DP step: an epsilon lower bound that a broken mechanism fails.

A membership test on a final model trained on natural data has almost no power: a
correct mechanism and one with its noise or clipping missing both give "audited epsilon
>= 0". This audit instead plays the worst case the guarantee must survive ("Adversary
Instantiation: Lower Bounds for Differentially Private Machine Learning", Nasr et al.
2021; "Tight Auditing of Differentially Private Machine Learning", Nasr et al. 2023):

1. fix the mechanism's state (model, synthetic set) and two neighbouring inputs, a batch
   ``D`` and ``D' = D + {canary}``, where the canary's gradient is far larger than the
   clipping norm (so clipping is what bounds it);
2. run the mechanism's own update step (the production code path, with the noise
   multiplier the full run was calibrated to) ``T`` times on ``D`` and ``T`` times on
   ``D'``, each time with fresh noise from the operating system's entropy, and record the
   released update ``g``;
3. score each release with ``s = <g, u>``, ``u`` the noise-free difference of the two
   updates (the direction the canary pushes), and turn the two score samples into an
   epsilon lower bound with Clopper-Pearson intervals (``attacks.epsilon``: threshold
   chosen on half of the trials, bound computed on the other half). Trials are
   independent, so the bound holds with the stated confidence.

The claim it is compared with is the accountant's epsilon for that single step: the
Gaussian mechanism with sensitivity ``C`` and noise ``sigma C`` (the canary is included
with certainty here, so no amplification by subsampling applies). A correct step stays
below it; a step without noise, or without clipping, is separated almost perfectly and
its bound exceeds the claim once the trials are enough (``trials_to_exceed``).

``broken`` exists to show the audit can fail: ``"noise"`` runs the step with noise
multiplier 0, ``"clip"`` replaces the per-example clip factors by 1 inside the real step
(the noise keeps its calibrated scale ``sigma C``); both still claim the calibrated epsilon.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from mi_defense.config import DISTILL_DP_DEFAULTS, DistillConfig, dpsgd_recipe
from mi_defense.errors import UserError

if TYPE_CHECKING:
    from mi_defense.defenses.base import StepNoise

QUICK_DP = DISTILL_DP_DEFAULTS["quick"]  # the DP-FRePo run whose step is audited by default
BREAKS = ("noise", "clip")
MECHANISMS = ("dp-frepo", "dp-frepo-once", "dpsgd")


@dataclass(frozen=True)
class CanaryAudit:
    """The result of a one-step canary audit (``to_json`` for ``--json``)."""

    mechanism: str
    claimed_epsilon: float                # the accountant's epsilon for the one audited step
    run_epsilon: float                    # what the full run claims (its target)
    audited_epsilon_lower_bound: float
    confidence: float
    delta: float
    trials: int                           # releases per neighbouring input
    noise_multiplier: float
    clip: float
    broken: Optional[str]
    bound: dict
    step_of: Optional[str] = None         # the defense spec whose own noise and clip the step ran at (--step-of)
    dataset: Optional[str] = None         # ... in the audit of this dataset
    n_private: Optional[int] = None       # ... calibrated for this many members

    @property
    def caught(self) -> bool:
        """The lower bound exceeds the claim: the step is not as private as it says."""
        return self.audited_epsilon_lower_bound > self.claimed_epsilon

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "caught": self.caught,
                "statistic": "inner product of the released update with the canary's noise-free direction",
                "audit": "white-box, one step, canary with certainty in D' (Nasr et al. 2021, 2023); "
                         "Clopper-Pearson bound on independent trials (threshold chosen on half of them)"}


@functools.lru_cache(maxsize=32)
def _calibrated(epsilon: float, q: float, steps: int, delta: float) -> float:
    """The run's noise multiplier (``accounting.calibrate_noise``), once per setting."""
    from mi_defense.accounting import calibrate_noise

    return calibrate_noise(epsilon, q, steps, delta)


def one_step_epsilon(noise_multiplier: float, delta: float) -> float:
    """Epsilon of one Gaussian-mechanism step with noise multiplier ``sigma`` (no
    subsampling), exactly: the step is ``1/sigma``-GDP, and ``accounting.composed_gaussian_epsilon``
    inverts its (epsilon, delta) curve. This is the tightest claim the step makes (the RDP
    bound the runs' accountant uses over many steps is looser for one step: 2.25 against
    2.07 at sigma = 1.979, delta = 6.2e-6), so the audit is held to the least it may show;
    infinite for ``sigma = 0``."""
    from mi_defense.accounting import composed_gaussian_epsilon

    return math.inf if noise_multiplier <= 0 else composed_gaussian_epsilon(noise_multiplier, 1, delta)


def trials_to_exceed(claim: float, confidence: float = 0.95) -> int:
    """Trials per input needed for a perfectly separated audit (a broken step) to bound
    epsilon above ``claim``: with ``m`` trials per side in the reporting half, the bound is
    ``ln(TPR_lo / FPR_hi)`` with ``TPR_lo = FPR_hi' = (alpha/2)^(1/m)`` complements."""
    alpha = (1.0 - confidence) / 2.0
    m = 1
    while True:
        fpr_hi = 1.0 - alpha ** (1.0 / m)
        if math.log((1.0 - fpr_hi) / fpr_hi) > claim:
            return 2 * m
        m += 1


def _check_request(broken: Optional[str], trials: int) -> None:
    """One-line errors for an unknown break or too few trials, before any work."""
    if broken not in (None,) + BREAKS:
        raise UserError(f"--break {broken!r} unknown; use {' or '.join(BREAKS)}")
    if trials < 4:
        raise UserError(f"--trials {trials}: use at least 4 releases per input")


def bound_from_scores(s_out: np.ndarray, s_in: np.ndarray, confidence: float, delta: float) -> dict:
    """Clopper-Pearson epsilon lower bound separating scores of ``D'`` (``s_in``) from ``D`` (``s_out``)."""
    from attacks.epsilon import epsilon_lower_bound

    scores = np.r_[np.asarray(s_out, np.float64), np.asarray(s_in, np.float64)]
    membership = np.r_[np.zeros(len(s_out), bool), np.ones(len(s_in), bool)]
    return epsilon_lower_bound(scores, membership, confidence, delta, seed=0, attack="canary")


@contextlib.contextmanager
def _broken_clip():
    """Per-example clip factors of 1 inside DP-FRePo's real step (the noise keeps its scale)."""
    from mi_defense.distillation import dp_readout
    from mi_defense.tfenv import tf

    real = dp_readout.clip_factors

    def no_clip(norms, clip):
        _, ok = real(norms, clip)
        return tf.where(ok, tf.ones_like(norms), tf.zeros_like(norms)), ok

    dp_readout.clip_factors = no_clip
    try:
        yield
    finally:
        dp_readout.clip_factors = real


def _frepo_pair(plan, seed: int):
    """Two DP-FRePo states, identical but for one canary in the private set: ``D`` holds 63
    random images of 3 classes; ``D'`` adds an image 50 times brighter with a wrong label,
    whose readout gradient is far above any clipping norm used here."""
    from mi_defense.distillation.frepo import FRePo

    rng = np.random.default_rng(seed)
    k = 3
    x = rng.standard_normal((63, 8, 8, 1)).astype(np.float32)
    y = np.arange(63) % k
    canary = 50.0 * np.abs(rng.standard_normal((1, 8, 8, 1))).astype(np.float32)
    cfg = DistillConfig(ipc=1, steps=10, width=8, depth=1, batch_real=64, pool_size=1, max_online_updates=1,
                        init="noise", epsilon=1.0, reg=1e-3, clip=plan.clip, seed=seed)
    x0 = rng.standard_normal((k, 8, 8, 1)).astype(np.float32)
    make = lambda xs, ys: FRePo(cfg, xs, ys, k, x0, np.arange(k), log=lambda s: None)  # noqa: E731
    return make(x, y), make(np.r_[x, canary], np.r_[y, 1])


def audit_dp_frepo_step(epsilon: float, trials: int = 500, broken: Optional[str] = None, confidence: float = 0.95,
                        steps: int = QUICK_DP["steps"], batch_real: int = QUICK_DP["batch_real"],
                        n_private: int = 54000, clip: float = 1.0, seed: int = 0,
                        noise: Optional["StepNoise"] = None) -> CanaryAudit:
    """Audit one step of DP-FRePo (readout clipping) at the noise multiplier a run of
    ``steps`` steps at expected batch ``batch_real`` over ``n_private`` records is
    calibrated to for ``epsilon`` (the ``quick`` DP defaults on MNIST by default), or at a
    defense's own ``noise`` (``Defense.step_noise``: its sigma, clip and delta)."""
    from mi_defense.accounting import dp_delta
    from mi_defense.distillation.dp import DPPlan, private_gradients
    from mi_defense.entropy import secret_key
    from mi_defense.tfenv import tf

    _check_request(broken, trials)
    if noise is None:
        delta = dp_delta(n_private)
        sigma = _calibrated(epsilon, min(1.0, batch_real / n_private), steps, delta)
    else:
        sigma, clip, delta = noise.noise_multiplier, noise.clip, noise.delta
    claim = one_step_epsilon(sigma, delta)
    plan = DPPlan(claim, claim, delta, sigma, 1.0, 1, clip, 64, "readout")  # every record in the batch, one step
    run_plan = dataclasses.replace(plan, noise_multiplier=0.0 if broken == "noise" else sigma)
    fr_out, fr_in = _frepo_pair(plan, seed)
    flat = lambda grads: tf.concat([tf.reshape(g, [-1]) for g in grads], 0)  # noqa: E731
    with _broken_clip() if broken == "clip" else contextlib.nullcontext():
        quiet = dataclasses.replace(run_plan, noise_multiplier=0.0)
        key0 = tf.constant(secret_key(2))
        u = (flat(private_gradients(fr_in, quiet, key0, tf.constant(0, tf.int64))[0])
             - flat(private_gradients(fr_out, quiet, key0, tf.constant(0, tf.int64))[0]))
        scores = {}
        for name, fr in (("out", fr_out), ("in", fr_in)):
            step = tf.function(lambda key, s, fr=fr:
                               tf.reduce_sum(flat(private_gradients(fr, run_plan, key, s)[0]) * u))
            scores[name] = np.array([float(step(tf.constant(secret_key(2)), tf.constant(t, tf.int64)))
                                     for t in range(trials)])
    bound = bound_from_scores(scores["out"], scores["in"], confidence, delta)
    return CanaryAudit("dp-frepo", claim, float(epsilon), bound["value"], confidence, delta, trials, sigma, clip,
                       broken, bound)


@contextlib.contextmanager
def _broken_unit_norm():
    """Embeddings used at their own norm inside the release-once mechanism (the noise keeps its scale)."""
    from mi_defense.distillation import once
    from mi_defense.tfenv import tf

    real = once._unit
    once._unit = lambda f: tf.cast(f, tf.float64)
    try:
        yield
    finally:
        once._unit = real


def audit_dp_frepo_once_release(epsilon: float, trials: int = 500, broken: Optional[str] = None,
                                confidence: float = 0.95, networks: int = 4, seed: int = 0,
                                noise: Optional["StepNoise"] = None) -> CanaryAudit:
    """Audit one release of DP-FRePo's release-once mechanism (``distill.once``: one network's
    noisy class sums and counts) at the noise multiplier a run with ``networks`` releases is
    calibrated to for ``epsilon``. ``D`` holds 63 random images of 3 classes, ``D'`` adds an
    image 50 times brighter with a wrong label; the network has one block (no normalisation),
    so without the unit-norm scaling the canary's embedding is far longer than 1. The claim
    is the exact epsilon of that one Gaussian release; ``broken="clip"`` removes the unit-norm
    scaling, ``"noise"`` the noise. ``noise``: a defense's own (``Defense.step_noise``)."""
    from mi_defense.accounting import calibrate_composed_gaussian, composed_gaussian_epsilon
    from mi_defense.distillation.dp_once import DEFAULT_DELTA, SENSITIVITY
    from mi_defense.distillation.once import OnceDistiller, noise_generator

    _check_request(broken, trials)
    delta = DEFAULT_DELTA if noise is None else noise.delta
    sigma = calibrate_composed_gaussian(epsilon, networks, delta) if noise is None else noise.noise_multiplier
    claim = composed_gaussian_epsilon(sigma, 1, delta)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((63, 8, 8, 1)).astype(np.float32)
    y = np.arange(63) % 3
    canary = 50.0 * np.abs(rng.standard_normal((1, 8, 8, 1))).astype(np.float32)
    cfg = DistillConfig(ipc=1, steps=networks, width=8, depth=1, batch_real=64, init="noise", epsilon=float(epsilon),
                        mechanism="once", networks=networks, seed=seed)
    x0 = rng.standard_normal((3, 8, 8, 1)).astype(np.float32)
    pair = {"out": OnceDistiller(cfg, x, y, 3, x0, np.arange(3), log=lambda s: None),
            "in": OnceDistiller(cfg, np.r_[x, canary], np.r_[y, 1], 3, x0, np.arange(3), log=lambda s: None)}
    flat = lambda stat: np.r_[stat[0].ravel(), stat[1]]  # noqa: E731
    with _broken_unit_norm() if broken == "clip" else contextlib.nullcontext():
        u = _quiet_difference(pair, flat)  # the direction the canary moves the release
        for d in pair.values():  # the run's sigma (the plan of this small D would be the same: q = 1)
            d.dp = dataclasses.replace(d.dp, noise_multiplier=0.0 if broken == "noise" else sigma)
        scores = {name: np.array([float(flat(d.noisy_statistic(0, noise_generator())) @ u) for _ in range(trials)])
                  for name, d in pair.items()}
    bound = bound_from_scores(scores["out"], scores["in"], confidence, delta)
    return CanaryAudit("dp-frepo-once", claim, float(epsilon), bound["value"], confidence, delta, trials, sigma,
                       SENSITIVITY, broken, bound)


def _quiet_difference(pair, flat):
    """The noise-free difference of the two inputs' statistics (``D'`` minus ``D``)."""
    saved = {k: d.dp for k, d in pair.items()}
    try:
        for d in pair.values():
            d.dp = dataclasses.replace(d.dp, noise_multiplier=0.0)
        rng = np.random.default_rng(0)
        return flat(pair["in"].noisy_statistic(0, rng)) - flat(pair["out"].noisy_statistic(0, rng))
    finally:
        for k, d in pair.items():
            d.dp = saved[k]


def audit_dpsgd_step(epsilon: float, trials: int = 500, broken: Optional[str] = None, confidence: float = 0.95,
                     n_private: int = 1000, model: str = "convnet", seed: int = 0,
                     noise: Optional["StepNoise"] = None) -> CanaryAudit:
    """Audit one step of DP-SGD as the ``dpsgd`` defense runs it (tensorflow-privacy's DP
    Keras model with the secret-noise reduction, ``defenses.dpsgd._dp_class``) at the noise
    multiplier its tuned recipe for ``model`` is calibrated to on ``n_private`` members
    (1000: the reference audits). The step runs on a small MLP (the mechanism, clip then
    noise, does not depend on the architecture); ``D`` holds 63 random rows of 3 classes,
    ``D'`` adds a row 50 times larger with a wrong label; plain SGD with rate 1, so the
    released update is the noisy clipped gradient itself. ``noise``: a defense's own
    (``Defense.step_noise``: its sigma, clip and delta) instead of the recipe's."""
    from mi_defense.accounting import dp_delta
    from mi_defense.defenses.dpsgd import TRUNCATION_SHARE, _dp_class, _xent
    from mi_defense.entropy import secret_key
    from mi_defense.models import MLP
    from mi_defense.tfenv import tf

    _check_request(broken, trials)
    if noise is None:
        r = dpsgd_recipe(model, epsilon)
        batch = min(r.batch, n_private)
        steps = int(math.ceil(r.epochs * n_private / batch))
        delta = dp_delta(n_private)
        sigma = _calibrated(epsilon, batch / n_private, steps, (1.0 - TRUNCATION_SHARE) * delta)
        clip = r.clip
    else:
        sigma, clip, delta = noise.noise_multiplier, noise.clip, noise.delta
    claim = one_step_epsilon(sigma, delta)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((63, 12)).astype(np.float32)
    y = np.arange(63) % 3
    canary = 50.0 * np.abs(rng.standard_normal((1, 12))).astype(np.float32)
    inputs = {"out": (x, y), "in": (np.r_[x, canary], np.r_[y, 1])}

    def make(noise):
        gen = tf.random.Generator.from_state(secret_key(3), "philox")
        m = _dp_class(MLP, gen, 64.0)(clip, noise, None, False, None, (12,), 3, width=16, depth=1, seed=seed)
        m.compile(optimizer=tf.keras.optimizers.SGD(1.0), loss=_xent)
        if broken == "clip":
            m._process_per_example_grads = lambda grads: grads  # no clipping inside the real step
        m(x[:1])
        return m

    quiet, noisy = make(0.0), make(0.0 if broken == "noise" else sigma)
    w0 = [tf.constant(v) for v in quiet.trainable_variables]

    def updater(m, name):
        xs, ys = (tf.constant(a) for a in inputs[name])
        batch = (xs, tf.one_hot(ys, 3), tf.ones([len(inputs[name][0])]))

        @tf.function
        def update():  # one real DP-SGD step from the fixed state; the released update
            for v, v0 in zip(m.trainable_variables, w0):
                v.assign(v0)
            m.train_step(batch)
            return tf.concat([tf.reshape(v0 - v, [-1]) for v, v0 in zip(m.trainable_variables, w0)], 0)
        return update

    u = updater(quiet, "in")() - updater(quiet, "out")()
    scores = {}
    for name in ("out", "in"):
        step = updater(noisy, name)
        scores[name] = np.array([float(tf.reduce_sum(step() * u)) for _ in range(trials)])
    bound = bound_from_scores(scores["out"], scores["in"], confidence, delta)
    return CanaryAudit("dpsgd", claim, float(epsilon), bound["value"], confidence, delta, trials, sigma, clip,
                       broken, bound)


AUDITS = {"dpsgd": audit_dpsgd_step, "dp-frepo": audit_dp_frepo_step, "dp-frepo-once": audit_dp_frepo_once_release}


def step_noise_of(defense, spec: str, n_private: int) -> "StepNoise":
    """``defense.step_noise(n_private)``, or a one-line error for a defense without a DP claim."""
    noise = defense.step_noise(n_private)
    if noise is None:
        raise UserError(f"--step-of {spec}: that defense claims no differential privacy, so it has no DP step to "
                        "audit; give a spec with eps=, e.g. dpsgd-linear:eps=1")
    return noise


def audit_step_of(defense, spec: str, n_private: int, trials: int = 500, broken: Optional[str] = None,
                  confidence: float = 0.95, dataset: Optional[str] = None) -> CanaryAudit:
    """The one-step audit of ``defense`` (a ``Defense`` built for an audit's context) at its
    own settings on ``n_private`` members: its mechanism's real step at the noise multiplier,
    clip and delta its ``fit`` calibrates (``Defense.step_noise``), so the result counts for
    that defense in the audit's verdict (``canary_record.calibrated_for``)."""
    noise = step_noise_of(defense, spec, n_private)
    r = AUDITS[noise.mechanism](noise.run_epsilon, trials=trials, broken=broken, confidence=confidence, noise=noise)
    return dataclasses.replace(r, step_of=spec, dataset=dataset, n_private=n_private)


def defense_of_audit(spec: str, cfg):
    """``(defense, n_members, dataset_name)``: the defense ``spec`` as the audit configured by
    ``cfg`` (an ``AuditConfig``) builds it (the data's shape and classes, the audit's training
    and distillation settings) and that audit's number of members."""
    from mi_defense.auditing.setup import member_count
    from mi_defense.config import DefenseSpec
    from mi_defense.data import load_dataset
    from mi_defense.defenses import DefenseContext, make_defense

    ds = load_dataset(cfg.dataset, cfg.data_dir)
    ctx = DefenseContext(ds.num_classes, ds.input_shape, cfg.train, cfg.real_steps, cfg.distill,
                         real_recipe=cfg.real_recipe)
    return make_defense(DefenseSpec.parse(spec), ctx), member_count(cfg, ds), ds.name


def audit_defense_step(spec: str, cfg, trials: int = 500, broken: Optional[str] = None, confidence: float = 0.95,
                       check: Optional[Callable[["StepNoise"], None]] = None) -> CanaryAudit:
    """``audit_step_of`` for the defense ``spec`` of the audit configured by ``cfg``
    (``defense_of_audit``); ``check(noise)`` runs before any trial (e.g. that a recorded run of
    that defense used this noise multiplier)."""
    from mi_defense.config import DefenseSpec

    spec = str(DefenseSpec.parse(spec))
    defense, n, dataset = defense_of_audit(spec, cfg)
    if check is not None:
        check(step_noise_of(defense, spec, n))
    return audit_step_of(defense, spec, n, trials, broken, confidence, dataset)
