"""How models are trained: ``TrainConfig`` (FRePo's protocol, and the architecture),
``RealRecipe`` (models on real data) and ``DPSGDRecipe`` (DP-SGD's training settings).
Their presets and tuned values are in ``config.presets``."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from mi_defense.config.params import NONNEG, POSITIVE, AllOf, Interval, OrNone, Options, Whole, check_fields
from mi_defense.errors import UserError

AUGMENT_MODES = ("dsa", "frepo-code", "flip_crop", "none", "auto")
# Names that recorded settings and recipes used before the two parameter sets had names of
# their own: ``true`` and ``frepo`` both applied the set now called ``dsa``.
AUGMENT_ALIASES = {"frepo": "dsa"}
LOSS_NAMES = ("mse", "xent")
NORMS = ("none", "batch", "instance", "layer")  # ConvNet normalisations (models.ConvNet; the pool models' too)


def augment_name(value, where: str) -> str:
    """The augmentation mode ``value`` names (``AUGMENT_MODES``): ``true`` and ``frepo`` are
    ``dsa`` (what they applied before the styles had names, so recorded settings keep their
    meaning), ``false`` is ``none``; anything else is a one-line error."""
    if value is True:
        return "dsa"
    if value is False:
        return "none"
    if isinstance(value, str) and value in AUGMENT_ALIASES:
        return AUGMENT_ALIASES[value]
    if isinstance(value, str) and value in AUGMENT_MODES:
        return value
    raise UserError(f"{where}: augment {value!r} unknown; use true, false, {', '.join(AUGMENT_MODES)}")


@dataclass(frozen=True)
class TrainConfig:
    """How a fresh model is trained on (x, y): FRePo's evaluation protocol by default.

    ``epochs`` (when set, and ``steps`` is not) gives the length as passes over the
    training set, so a recipe means the same for 100 or 5000 examples. ``augment``:
    ``dsa`` (``true``, the default; one random augmentation per batch, FRePo's protocol,
    with the parameters of Differentiable Siamese Augmentation; ``frepo`` is its old name),
    ``frepo-code`` (the same with the milder parameters of FRePo's public evaluation code;
    see ``augment``), ``flip_crop`` (random flips and padded crops), ``auto``
    (``flip_crop`` for RGB images, none otherwise), ``none`` (``false``). It is stored by
    name, so a recorded configuration says which one ran.
    """

    width: int = 128
    depth: int = 3
    norm: str = "none"
    lr: float = 3e-4
    warmup: int = 500
    lr_final_ratio: float = 0.0      # the cosine decay's floor, a fraction of lr (FRePo's code: 0.01)
    steps: Optional[int] = None      # None: from epochs, else training.loop.default_steps
                                     # (1000 / 2000 / 5000 for <= 10 / 100 / more)
    batch: int = 500
    augment: Any = "dsa"              # measured: as good as frepo-code on MNIST, better on Fashion-MNIST (README)
    loss: str = "mse"                # mse on (learned or centred one-hot) labels | xent
    seed: int = 0
    epochs: Optional[float] = None

    _constraints = {
        "width": Whole(1), "depth": Whole(1), "batch": Whole(1), "warmup": Whole(0), "seed": Whole(0),
        "steps": OrNone(Whole(1)), "epochs": OrNone(POSITIVE), "lr": POSITIVE,
        "lr_final_ratio": AllOf(NONNEG, Interval(float, None, 1, closed="neither",
                                                 description="below 1 (a fraction of lr)")),
        "loss": Options(LOSS_NAMES), "norm": Options(NORMS),
    }

    def __post_init__(self):
        self.validate()

    def validate(self) -> "TrainConfig":
        check_fields(self, "train")
        object.__setattr__(self, "augment", augment_name(self.augment, "train"))
        return self

    def augment_mode(self, rgb: bool) -> str:
        """The augmentation actually applied: dsa, frepo-code, flip_crop or none."""
        return ("flip_crop" if rgb else "none") if self.augment == "auto" else self.augment


@dataclass(frozen=True)
class RealRecipe:
    """How a model is trained on real data (the ``none`` defense and every real-data target):
    as a practitioner deploys it (``training.recipes``)."""

    loss: str = "xent"
    lr: float = 3e-3
    warmup: int = 50
    epochs: float = 100.0
    batch: int = 128
    augment: Any = "auto"            # auto: flips and crops for RGB, none for grey-scale

    _constraints = {"loss": Options(LOSS_NAMES), "batch": Whole(1), "warmup": Whole(0), "lr": POSITIVE,
                    "epochs": POSITIVE}

    def __post_init__(self):
        check_fields(self, "real_recipe")
        object.__setattr__(self, "augment", augment_name(self.augment, "real_recipe"))

    def train_config(self, base: TrainConfig, seed: int, epochs: Optional[float] = None,
                     steps: Optional[int] = None) -> TrainConfig:
        """``base``'s architecture with this recipe's training."""
        return dataclasses.replace(base, loss=self.loss, lr=float(self.lr), warmup=self.warmup, batch=self.batch,
                                   augment=self.augment, epochs=float(epochs or self.epochs), steps=steps, seed=seed)


FRACTION = Interval(float, 0, 1, closed="left")  # [0, 1)


@dataclass(frozen=True)
class DPSGDRecipe:
    """How DP-SGD trains (``defenses.dpsgd``): expected batch, length in epochs
    (``steps = ceil(epochs n / batch)``; 0: ``DPSGD_STEPS`` steps), peak learning rate,
    clipping norm, optimiser (SGD with ``momentum`` or Adam), warm-up as a fraction of the
    steps then cosine decay to zero, and the weights' moving-average decay (0: none). The
    tuned ones are ``config.presets.DPSGD_RECIPES``."""

    name: str
    batch: int
    epochs: float
    lr: float
    clip: float
    optimizer: str = "sgd"
    momentum: float = 0.9
    warmup: float = 0.05
    ema: float = 0.0

    _constraints = {"batch": Whole(1), "epochs": NONNEG, "lr": POSITIVE, "clip": POSITIVE,
                    "optimizer": Options(("sgd", "adam")), "momentum": FRACTION, "warmup": FRACTION, "ema": FRACTION}

    def __post_init__(self):
        check_fields(self, f"DP-SGD recipe {self.name}")
