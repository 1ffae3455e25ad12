"""Baselines: no defense, and a random real subset of the members.

``none`` trains on every member with the real-data recipe (``mi_defense.training.recipes``): the
leaky reference point, fitted as a deployed model would be. ``subset:n=K`` trains on K
random members with FRePo's distilled-data protocol, in an audit by default as many as
the first distilled set has examples: the naive baseline
a distillation defense has to beat ("No Free Lunch in 'Privacy for Free: How does Dataset
Condensation Help Privacy'", Carlini, Feldman & Nasr 2022). Neither carries a formal
privacy guarantee.
"""
from __future__ import annotations

import time

from mi_defense.config import FINITE_POSITIVE, POSITIVE_WHOLE
from mi_defense.defenses.base import Defense, DefenseResult, TrainingJob, stratified_subset, training_phase
from mi_defense.training.evaluate import accuracy
from mi_defense.training.recipes import describe
from mi_defense.training.targets import targets_for


class NoDefense(Defense):
    name = "none"
    _constraints = {"steps": POSITIVE_WHOLE, "epochs": FINITE_POSITIVE}
    example = "none:epochs=100"

    def planned(self, n_train: int) -> list:
        cfg = self.ctx.real_recipe.train_config(self.ctx.train, 0, epochs=self.params.get("epochs"),
                                                steps=self.params.get("steps"))
        return [training_phase(cfg, n_train)]

    def prepare(self, x, y, seed) -> TrainingJob:
        t0 = time.time()
        cfg = self.ctx.real_recipe.train_config(self.ctx.train, seed, epochs=self.params.get("epochs"),
                                                steps=self.params.get("steps"))

        def finish(model) -> DefenseResult:
            return DefenseResult(model, None, {
                "n_train": int(len(x)), "train_steps": int(model.train_steps), "train_accuracy": accuracy(model, x, y),
                **self.recorded(describe(cfg, len(x), model.train_steps, _rgb(x), "real-data", x.ndim == 4), model),
                "seconds": time.time() - t0,
                "privacy_statement": "No defense: the model is trained on every member, as it would be deployed. "
                                     "No privacy guarantee."})
        return TrainingJob(x, targets_for(y, self.ctx.num_classes), cfg, "none", finish)


class Subset(Defense):
    name = "subset"
    _constraints = {"n": POSITIVE_WHOLE, "steps": POSITIVE_WHOLE}
    example = "subset:n=100"

    def size(self) -> int:
        """``n``; an audit gives every ``subset`` one (``audit.plan``), elsewhere 10 per class."""
        return int(self.params.get("n") or 10 * self.ctx.num_classes)

    def planned(self, n_train: int) -> list:
        return [training_phase(self.train_cfg(0, self.params.get("steps")), self.size())]

    def prepare(self, x, y, seed) -> TrainingJob:
        t0 = time.time()
        n = self.size()
        pos = stratified_subset(y, n, self.ctx.num_classes, seed)
        cfg = self.train_cfg(seed, self.params.get("steps"))

        def finish(model) -> DefenseResult:
            return DefenseResult(model, None, {
                "n_train": int(n), "train_steps": int(model.train_steps), "train_positions": pos.tolist(),
                "train_accuracy": accuracy(model, x, y), "train_accuracy_on_subset": accuracy(model, x[pos], y[pos]),
                **self.recorded(describe(cfg, n, model.train_steps, _rgb(x), "frepo-protocol", x.ndim == 4), model),
                "seconds": time.time() - t0,
                "privacy_statement": f"Random subset of {n} members, trained with FRePo's distilled-data protocol like "
                                     "a distilled set of the same size: the other members are never seen by the "
                                     f"model, the {n} chosen are fully exposed. No formal privacy guarantee."})
        return TrainingJob(x[pos], targets_for(y[pos], self.ctx.num_classes), cfg, f"subset n={n}", finish)


def _rgb(x) -> bool:
    return x.ndim == 4 and x.shape[-1] == 3
