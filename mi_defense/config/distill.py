"""FRePo's and DP-FRePo's settings: ``DistillConfig``, validated on construction. Its
presets are in ``config.presets``, its resolver (preset, DP defaults, TOML, flags) in
``config.toml``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mi_defense.config.params import EPSILON, NONNEG, POSITIVE, Interval, OrNone, Options, Whole, check_fields
from mi_defense.config.train import NORMS
from mi_defense.errors import UserError

REAL_INIT_LR = 3e-4   # FRePo's LAMB learning rate from real images
NOISE_INIT_LR = 1e-2  # from a noise start (the default, and DP-FRePo's): the images must travel further
NOISE_INITS = ("smooth-noise", "noise")  # data-independent starts (distill.api.noise_start)
# DP-FRePo's clipping spaces: what each clips, as its privacy statement names it. The
# mechanism of each is distill.dp.SURROGATES.
CLIP_SPACES = {
    "readout": "the KRR readout (the classes x features map from real features to predictions)",
    "features": "the synthetic features and labels",
}
# DP-FRePo's mechanisms: how the private data is read, as the privacy statement names it.
# Their code: distillation.frepo with distillation.dp (per-step), distillation.once (once).
MECHANISMS = {
    "per-step": "a Poisson-subsampled, clipped and noised KRR gradient at every outer step",
    "once": "noisy per-class mean embeddings under fixed random networks, released once; the images are then "
            "optimised against them (labels fixed, no pool)",
}
STRATEGIES = ("default", "mirrored")  # tf.distribute: one device, or the real batch split over all GPUs
DECAY = Interval(float, 0, 1, closed="left")  # the weight of the old value in a moving average


@dataclass(frozen=True)
class DistillConfig:
    """FRePo hyper-parameters ("Dataset Distillation using Neural Feature Regression")."""

    ipc: int = 10                    # synthetic images per class
    steps: int = 2000                # outer (meta) steps
    width: int = 128                 # ConvNet width of the pool models
    depth: int = 3
    pool_norm: str = "batch"         # normalisation in the pool models
    pool_bn_momentum: float = 0.9    # batch norm: weight of the old running statistics per online step
    batch_real: int = 1024           # real examples per outer step
    pool_size: int = 10
    max_online_updates: int = 100
    lr: Optional[float] = None       # LAMB, cosine decay to lr_final_ratio * lr; None: image_lr's default for the init
    label_lr: Optional[float] = None  # LAMB rate of the learned labels; None: the images' rate (image_lr)
    lr_final_ratio: float = 0.1
    lamb_b1: float = 0.9             # LAMB's first-moment decay for the synthetic set (FRePo: 0.9)
    online_lr: float = 3e-4          # Adam for the pool models
    max_online_batch: int = 1000     # synthetic examples per online step, at most
    reg: float = 1e-6                # KRR ridge lambda, relative to tr(K_ss)/n_s
    learn_labels: bool = True
    init: str = "noise"              # noise | smooth-noise (neither copies a member)
                                     # | real (copies ipc members per class) | a public .npz
    smooth_sigma: float = 2.0        # smooth-noise: Gaussian blur of the noise, in pixels
    flip: Optional[bool] = None      # None: on for RGB
    seed: int = 0
    checkpoint_every: int = 200
    jit: bool = False                # XLA; off by default (slower on CPU)
    strategy: str = "default"        # default | mirrored
    epsilon: Optional[float] = None  # DP-FRePo: (epsilon, delta)-DP release; None: no guarantee
    delta: Optional[float] = None    # None: min(1e-5, 1/n^1.1) for n private examples
    clip: float = 1.0                # DP-FRePo: per-example bound on the gradient in clip_space
    clip_space: str = "readout"      # DP-FRePo: readout (the KRR's classes x features map)
                                     # | features (synthetic features and labels)
    mechanism: str = "per-step"      # DP-FRePo: per-step (noisy gradients each step) | once (MECHANISMS)
    networks: int = 4                # mechanism=once: random networks, one release each
    augmentations: int = 0           # mechanism=once: each member's embedding averaged over this many DSA
                                     # augmentations fixed per network (the synthetic set matched under the
                                     # same ones); 0: none

    _constraints = {
        **{k: Whole(1) for k in ("ipc", "steps", "width", "depth", "pool_size", "batch_real", "max_online_updates",
                                 "max_online_batch", "networks")},
        "seed": Whole(0), "checkpoint_every": Whole(0), "augmentations": Whole(0),
        "online_lr": POSITIVE, "lr_final_ratio": NONNEG, "reg": NONNEG, "lr": OrNone(POSITIVE),
        "label_lr": OrNone(POSITIVE),
        "pool_norm": Options(NORMS), "strategy": Options(STRATEGIES),
        "init": Options(NOISE_INITS + ("real",),
                        also=(lambda v: str(v).endswith(".npz"), "a path to a public .npz set")),
        "clip": POSITIVE, "clip_space": Options(CLIP_SPACES), "mechanism": Options(MECHANISMS),
        "smooth_sigma": POSITIVE,
        "lamb_b1": DECAY, "pool_bn_momentum": DECAY,
        "epsilon": OrNone(EPSILON), "delta": OrNone(POSITIVE),
    }

    def __post_init__(self):
        self.validate()

    @property
    def image_lr(self) -> float:
        """The synthetic set's learning rate: ``lr``, else ``NOISE_INIT_LR`` from a noise
        start (the images travel far) and ``REAL_INIT_LR`` from real or public images."""
        if self.lr is not None:
            return self.lr
        return NOISE_INIT_LR if self.init in NOISE_INITS else REAL_INIT_LR

    @property
    def label_rate(self) -> float:
        """The learned labels' learning rate: ``label_lr``, else the images' (``image_lr``)."""
        return self.label_lr if self.label_lr is not None else self.image_lr

    @property
    def private(self) -> bool:
        """True for DP-FRePo (an ``epsilon`` is set)."""
        return self.epsilon is not None

    @property
    def releases_once(self) -> bool:
        """True for DP-FRePo's release-once mechanism (``validate`` refuses it without ``epsilon``)."""
        return self.mechanism == "once"

    def validate(self) -> "DistillConfig":
        check_fields(self, "distill")
        if self.private:
            if self.init == "real":
                raise UserError("DP-FRePo (epsilon set) needs a start that copies no member: "
                                "use init=smooth-noise, noise or a public .npz set")
            if self.strategy != "default":
                raise UserError("DP-FRePo runs on one device: use strategy=default")
        if self.mechanism != "per-step" and not self.private:
            raise UserError(f"mechanism={self.mechanism} is a DP-FRePo mechanism: set epsilon (--epsilon), or leave "
                            "mechanism at per-step")
        if self.augmentations and not self.releases_once:
            raise UserError(f"augmentations={self.augmentations} applies to DP-FRePo's release-once mechanism only: "
                            "set mechanism=once (--mechanism once), or leave augmentations at 0")
        if self.releases_once and self.steps < self.networks:
            raise UserError(f"mechanism=once with steps={self.steps} below networks={self.networks} would pay for "
                            "releases it never uses; use steps >= networks or fewer networks (--networks)")
        if self.delta is not None and (self.delta >= 1 or self.epsilon is None):
            raise UserError(f"delta={self.delta} needs epsilon set and 0 < delta < 1")
        return self
