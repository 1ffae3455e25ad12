"""One interface for every defense: ``fit(x_members, y_members, seed) -> DefenseResult``.

A defense sees only the members (in model input space) and returns the model an
attacker queries, the artifact it would release (if any) and its own metadata,
including a plain statement of what privacy it does or does not guarantee.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from mi_defense.config import Constraint, DistillConfig, RealRecipe, TrainConfig, check_spec_params
from mi_defense.errors import UserError


@dataclass(frozen=True)
class DefenseContext:
    """What every defense needs besides the members."""

    num_classes: int
    input_shape: Tuple[int, ...]
    train: TrainConfig                    # architecture, and FRePo's protocol for distilled sets and same-size subsets
    real_steps: Optional[int] = None      # DP-SGD steps (None: its default)
    distill: DistillConfig = field(default_factory=DistillConfig)
    progress: bool = False
    on_step: Optional[Callable] = None     # called every 100 training steps with (step, model)
    real_recipe: RealRecipe = field(default_factory=RealRecipe)  # how real-data targets (none) are trained
    fixed_normalisation: bool = False     # the inputs' normalisation uses no statistic of the data (Transform.fixed)
    # The user's model (``defenses.own_model``): ``build(input_shape, num_classes, seed) -> tf.keras.Model``,
    # a spec string ('file.py:build', 'package.module:build') or None for the package's ConvNet / MLP.
    build_model: Any = None

    def __post_init__(self):
        if self.build_model is not None:  # loaded and probed once: a bad model fails before anything is trained
            from mi_defense.defenses.own_model import as_builder

            object.__setattr__(self, "build_model", as_builder(self.build_model, self.input_shape, self.num_classes))

    @property
    def model_source(self) -> str:
        """Where the trained models' architecture comes from, as recorded."""
        if self.build_model is not None:
            return self.build_model.source
        return "mi_defense " + ("ConvNet" if len(self.input_shape) == 3 else "MLP")

    @property
    def normalisation(self) -> str:
        """The inputs' normalisation, as a DP statement says whether its guarantee covers it."""
        if self.fixed_normalisation:
            return "the input normalisation is fixed ([0, 1] pixels to [-1, 1]), not fitted to any data"
        return ("in this audit every defense shares one input normalisation fitted to the training pool "
                "(per-channel mean and deviation), which the guarantee does not cover")


@dataclass
class DefenseResult:
    model: Any                                  # the Keras model an attacker queries
    released: Optional[Dict[str, np.ndarray]]   # e.g. the synthetic set; None when nothing is released
    metadata: Dict[str, Any]


@dataclass(frozen=True)
class StepNoise:
    """How one DP step of a defense is noised, for a one-step canary audit at the defense's own
    settings (``mi-defense canary --step-of SPEC``): ``mechanism`` is the canary audit that runs
    that step (``auditing.canary.MECHANISMS``), ``noise_multiplier`` and ``clip`` are the
    step's sigma and clipping norm as the defense calibrates them for its member count,
    ``delta`` the run's, ``run_epsilon`` the run's target."""

    mechanism: str
    noise_multiplier: float
    clip: float
    delta: float
    run_epsilon: float

    def __post_init__(self):
        if not (self.noise_multiplier >= 0 and self.clip > 0 and 0 < self.delta < 1 and self.run_epsilon > 0):
            raise ValueError(f"invalid step noise {self}")


@dataclass
class TrainingJob:
    """A defense's ``fit`` in two halves: the training set and recipe it prepared (for FRePo,
    after distilling), and ``finish``, which turns the trained model into its result. Jobs of
    one recipe on training sets of one shape can train together (``defenses.together``)."""

    x: np.ndarray                               # model inputs
    y: np.ndarray                               # float targets (N, C)
    cfg: TrainConfig                            # the recipe, with this run's seed
    desc: str                                   # progress-bar label
    finish: Callable[[Any], DefenseResult]


class Defense:
    name = "base"
    # Every parameter a spec may give, with the constraint its value must meet (None: the
    # defense checks it itself); ``config.check_spec_params`` checks and converts them.
    _constraints: Dict[str, Optional[Constraint]] = {}
    required: Tuple[str, ...] = ()
    example = ""
    releases = False                # True: fit() returns a released data set (attacked by release_*)

    def __init__(self, ctx: DefenseContext, **params):
        self.ctx = ctx
        self.params = check_spec_params(self.name, params, self._constraints, self.required, self.example)

    def prepare(self, x: np.ndarray, y: np.ndarray, seed: int) -> Optional[TrainingJob]:
        """Everything ``fit`` does before training a model; ``None`` for a defense that trains
        its own way (DP-SGD) and so cannot train together with others."""
        return None

    def fit(self, x: np.ndarray, y: np.ndarray, seed: int) -> DefenseResult:
        """Train the model an attacker queries on the members ``(x, y)`` with ``seed``."""
        job = self.prepare(x, y, seed)
        if job is None:  # pragma: no cover - interface
            raise NotImplementedError(f"defense '{self.name}' defines neither fit nor prepare")
        return job.finish(self.train(job))

    def train(self, job: TrainingJob):
        """Train the model of one prepared job (``training.loop.train_model``)."""
        from mi_defense.training.loop import train_model

        return train_model(job.x, job.y, self.ctx.num_classes, job.cfg, progress=self.ctx.progress, desc=job.desc,
                           on_step=self.ctx.on_step, model=self.own_model(job.cfg.seed))

    def own_model(self, seed: int):
        """A fresh model of the user's (``ctx.build_model``) for ``seed``, or None for the package's own."""
        if self.ctx.build_model is None:
            return None
        from mi_defense.defenses.own_model import OwnModel

        return OwnModel(self.ctx.build_model(self.ctx.input_shape, self.ctx.num_classes, seed),
                        self.ctx.build_model.source)

    def model_summary(self, model) -> dict:
        """The trained model's architecture as every run records it (``"model"``): source, layer classes, parameters."""
        from mi_defense.defenses.own_model import summary

        return summary(model, self.ctx.model_source)

    def recorded(self, recipe: dict, model, note: str = "") -> dict:
        """The metadata entries ``recipe`` and ``model`` (the architecture: source, layer classes,
        parameters); a model of the user's is also named in the recipe's description, with ``note``."""
        s = self.model_summary(model)
        if self.ctx.build_model is not None:
            from mi_defense.defenses.own_model import describe

            recipe = dict(recipe, description=f"{recipe['description']}; {describe(s)}{note}")
        return {"recipe": recipe, "model": s}

    def step_noise(self, n_private: int) -> Optional[StepNoise]:
        """The noise of one DP step on ``n_private`` members, as ``fit`` calibrates it; None for
        a defense without a DP claim."""
        return None

    def resolved(self) -> Dict[str, Any]:
        """Settings taken from the context rather than the spec, as ``fit`` records them in
        its metadata; a cached run is reused only when they still match."""
        return {}

    def planned(self, n_train: int) -> list:
        """The work of one run on ``n_train`` examples, as ``progress.Phase`` records (steps of
        each kind, ``auditing.workplan``); empty when the defense does not say (its runs are
        then timed whole)."""
        return []

    def train_cfg(self, seed: int, steps: Optional[int]) -> TrainConfig:
        return dataclasses.replace(self.ctx.train, seed=seed,
                                   steps=steps if steps is not None else self.ctx.train.steps)


def stratified_subset(y: np.ndarray, n: int, num_classes: int, seed: int) -> np.ndarray:
    """``n`` positions into ``y``, as even over classes as the data allows."""
    if n > len(y):
        raise UserError(f"subset of {n} examples asked, the members hold {len(y)}; lower n")
    rng = np.random.default_rng(seed)
    per = [np.flatnonzero(y == c) for c in range(num_classes)]
    take = [min(len(p), n // num_classes) for p in per]
    rest = n - sum(take)
    chosen = [rng.choice(p, k, replace=False) for p, k in zip(per, take)]
    if rest:
        left = np.setdiff1d(np.arange(len(y)), np.concatenate(chosen))
        chosen.append(rng.choice(left, rest, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def training_phase(cfg: TrainConfig, n_train: int):
    """The training of ``n_train`` examples with ``cfg``: its steps at its batch."""
    from mi_defense.progress import Phase
    from mi_defense.training.loop import resolve_steps

    return Phase("train", f"training steps at batch {min(cfg.batch, n_train)}", resolve_steps(cfg, n_train))
