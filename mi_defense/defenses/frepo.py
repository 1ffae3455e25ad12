"""Dataset distillation as a defense: distil the members with FRePo, then train the
released model on the synthetic set only (FRePo's evaluation protocol).

The released artifact is the synthetic set itself. Members copied at initialisation
(``init=real``) are the most exposed and are recorded. Plain FRePo has no formal privacy
guarantee: the audit's attacks, including those on the released set, are the evidence.
With ``eps=E`` the set is distilled by DP-FRePo (``distill.dp``): an (E, delta)-DP
release, whose claimed epsilon the audit's lower bound is set against. It starts from
smoothed noise, as ``mi-defense distill --epsilon`` does at ``quick``, unless the spec
names ``init`` or the context's start is a public ``.npz`` set; the audit's other
settings (real batch, steps) stay the context's.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Optional

from mi_defense.config import DISTILL_DP_DEFAULTS, EPSILON, FINITE_POSITIVE, NOISE_INITS, POSITIVE_WHOLE, DistillConfig
from mi_defense.defenses.base import Defense, DefenseResult, StepNoise, TrainingJob, training_phase
from mi_defense.errors import UserError
from mi_defense.training.evaluate import accuracy
from mi_defense.training.recipes import describe


DP_START = DISTILL_DP_DEFAULTS["quick"]["init"]  # DP-FRePo's start when the spec names none


class FRePoDefense(Defense):
    name = "frepo"
    _constraints = {"ipc": POSITIVE_WHOLE, "init": None, "steps": POSITIVE_WHOLE, "lr": FINITE_POSITIVE,
                    "learn_labels": None, "epsilon": EPSILON, "clip": FINITE_POSITIVE,
                    "clip_space": None, "mechanism": None,  # None: DistillConfig checks it
                    "networks": POSITIVE_WHOLE}
    example = "frepo:ipc=10,lr=0.01 or frepo:ipc=10,eps=8 or frepo:ipc=10,eps=1,mechanism=once"
    releases = True

    def __init__(self, ctx, **params):
        super().__init__(ctx, **params)
        self.config(0)  # reject bad parameters before anything is trained

    def config(self, seed: int) -> DistillConfig:
        """The context's distillation settings with this spec's parameters applied."""
        p = self.params
        changes = {"seed": seed}
        for k in ("ipc", "steps", "lr"):
            if k in p:
                changes[k] = p[k]
        if "init" in p:
            changes["init"] = str(p["init"])
        if "epsilon" in p:  # DP-FRePo
            changes["epsilon"] = p["epsilon"]
            if "init" not in p and (self.ctx.distill.init in NOISE_INITS or self.ctx.distill.init == "real"):
                changes["init"] = DP_START  # real members are refused under DP; white noise starts worse
        if "clip" in p:
            changes["clip"] = float(p["clip"])
        for k in ("clip_space", "mechanism"):
            if k in p:
                changes[k] = str(p[k])
        if "networks" in p:
            changes["networks"] = p["networks"]
        if "learn_labels" in p:
            changes["learn_labels"] = str(p["learn_labels"]).lower() in ("1", "true", "yes")
        return dataclasses.replace(self.ctx.distill, **changes).validate()

    def resolved(self):
        """DP-FRePo's clipping space and start come from defaults unless the spec names them,
        and both defaults changed once (features then readout; white then smoothed noise): a
        cached private run is reused only when it records the space and start now in effect."""
        cfg = self.config(0)
        if not cfg.private:
            return {}
        if cfg.mechanism != "per-step":  # named only off the default, so earlier cached runs stay valid
            return {"mechanism": cfg.mechanism, "networks": cfg.networks, "init": cfg.init}
        return {"clip_space": cfg.clip_space, "init": cfg.init}

    def step_noise(self, n_private: int) -> Optional[StepNoise]:
        """Per-step DP-FRePo: one noisy step of the readout gradient (``distillation.dp.DPPlan``);
        release-once: one network's noisy class statistics (``distillation.dp_once.OncePlan``,
        L2 sensitivity ``SENSITIVITY``). None without epsilon. The one-step canary audit runs
        only the readout clipping (``clip_space="readout"``, the default)."""
        cfg = self.config(0)
        if not cfg.private:
            return None
        if cfg.releases_once:
            from mi_defense.distillation.dp_once import SENSITIVITY, OncePlan

            plan = OncePlan.for_config(cfg, n_private)
            return StepNoise("dp-frepo-once", plan.noise_multiplier, SENSITIVITY, plan.delta, plan.target_epsilon)
        if cfg.clip_space != "readout":
            raise UserError(f"defense '{self.name}': the one-step canary audit runs DP-FRePo's readout step; "
                            f"clip_space={cfg.clip_space} is not audited by it (use the one-run audit, --one-run)")
        from mi_defense.distillation.dp import DPPlan

        plan = DPPlan.for_config(cfg, n_private)
        return StepNoise("dp-frepo", plan.noise_multiplier, plan.clip, plan.delta, plan.target_epsilon)

    def planned(self, n_train: int) -> list:
        """A distillation (DP steps cost more: per-example clipping), then a training on the synthetic set."""
        from mi_defense.progress import Phase

        cfg = self.config(0)
        kind = f"{'DP ' if cfg.private else ''}distillation steps (pool width {cfg.width}, real batch {cfg.batch_real})"
        if cfg.releases_once:  # K passes over the members, then steps on the synthetic set
            kind = (f"release-once DP distillation steps, after {cfg.networks} passes over the members ("
                    f"{cfg.networks} random networks of width {cfg.width})")
        return [Phase("distill", kind, int(cfg.steps)), training_phase(self.ctx.train, cfg.ipc * self.ctx.num_classes)]

    def prepare(self, x, y, seed) -> TrainingJob:
        """Distil the members; the job trains the released model on the synthetic set."""
        from mi_defense.distillation.api import distil_members

        t0 = time.time()
        cfg = self.config(seed)
        res = distil_members(cfg, x, y, self.ctx.num_classes, log=lambda s: None, progress=self.ctx.progress)
        x_syn, y_syn, labels, init_pos, state = res.x, res.y, res.labels, res.init_positions, res.state
        t_distill = time.time() - t0
        tcfg = dataclasses.replace(self.ctx.train, seed=seed)

        def finish(model) -> DefenseResult:
            return DefenseResult(model, {"x": x_syn, "y": y_syn, "labels": labels, "init_positions": init_pos}, {
                "n_train": int(len(x_syn)), "ipc": cfg.ipc, "init": cfg.init, "distill_steps": state.step,
                "distill_lr": cfg.image_lr, "distill_seconds": t_distill,
                "distill_final_loss": state.history[-1]["loss"] if state.history else None,
                "float64_retries": state.f64_retries, "train_steps": int(model.train_steps),
                "train_accuracy": accuracy(model, x, y), "seconds": time.time() - t0,
                **self.recorded(describe(tcfg, len(x_syn), model.train_steps, x.ndim == 4 and x.shape[-1] == 3,
                                         "frepo-protocol", x.ndim == 4), model,
                                self._pool_text(cfg, x.ndim == 4)),
                **self._privacy(res.dp, len(x_syn), cfg, self.ctx.normalisation)})
        return TrainingJob(x_syn, y_syn, tcfg, f"train on {len(x_syn)} synthetic", finish)

    @staticmethod
    def _pool_text(cfg, images: bool) -> str:
        net = "ConvNet" if images else "MLP"
        if cfg.releases_once:
            return (f"; the release-once distillation uses {cfg.networks} random {net}s of width {cfg.width}, depth "
                    f"{cfg.depth}, never trained")
        return f"; the distillation's pool keeps the package's {net} (width {cfg.width}, depth {cfg.depth}, " \
               f"{cfg.pool_norm} norm)"

    @staticmethod
    def _privacy(plan, n_syn: int, cfg, normalisation: str) -> dict:
        if plan is None:
            return {"privacy_statement": f"FRePo synthetic set of {n_syn} images ({cfg.ipc} per class, "
                                         f"init={cfg.init}); the model is trained on it alone. No formal privacy "
                                         "guarantee: the numbers below are empirical attack results, and members "
                                         "copied at initialisation are reported as their own slice."}
        statement = plan.statement(normalisation)
        detail = {k: getattr(plan, k) for k in ("clip", "clip_space", "sampling_rate", "networks") if hasattr(plan, k)}
        return {"epsilon": plan.epsilon, "target_epsilon": plan.target_epsilon, "delta": plan.delta,
                "noise_multiplier": plan.noise_multiplier, "mechanism": cfg.mechanism, **detail,
                "privacy_statement": f"DP-FRePo synthetic set of {n_syn} images; the model is trained on it alone. "
                                     + statement}
