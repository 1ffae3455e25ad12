"""Trained attack models (scikit-learn) on per-example output features.

Features: the target's probabilities sorted in decreasing order, the loss, and the
one-hot label. Every example gets an out-of-fold score from stratified k-fold
cross-validation; inside each training fold the classes are balanced by subsampling the
larger one, the hyper-parameters of the cheap models (logistic regression, k nearest
neighbours) are chosen by a small grid search (3-fold, AUC) on at most ``tune_max``
examples, and the chosen model is refitted on the whole fold. The costly models have
fixed settings that stop early on a validation split: gradient-boosted trees
(scikit-learn's histogram gradient boosting, as strong as a random forest on these
features at a fraction of the time) and an MLP. TensorFlow Privacy's trained attacks
(``privacy_tests``) use the same four families with a random forest.
"""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from attacks.inputs import AttackInputs
from attacks.signals import loss, probabilities


def attack_models(seed: int = 0, n_jobs: Optional[int] = None):
    """name -> (estimator, parameter grid)."""
    return {
        "lr": (LogisticRegression(max_iter=2000), {"logisticregression__C": [0.1, 1.0, 10.0]}),
        "mlp": (MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=200, early_stopping=True, n_iter_no_change=5,
                              random_state=seed), {}),
        "gb": (HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=50,
                                              early_stopping=True, n_iter_no_change=10, random_state=seed), {}),
        "knn": (KNeighborsClassifier(n_jobs=n_jobs), {"kneighborsclassifier__n_neighbors": [10, 50]}),
    }


def attack_features(inp: AttackInputs) -> np.ndarray:
    p = probabilities(inp)
    sorted_p = -np.sort(-p, axis=1)
    onehot = np.eye(inp.num_classes)[inp.labels]
    return np.hstack([sorted_p, loss(inp)[:, None], onehot])


def _balanced(idx: np.ndarray, y: np.ndarray, rng) -> np.ndarray:
    pos, neg = idx[y[idx]], idx[~y[idx]]
    k = min(len(pos), len(neg))
    return np.sort(np.r_[rng.choice(pos, k, replace=False), rng.choice(neg, k, replace=False)])


def trained_scores(inp: AttackInputs, model: str = "lr", folds: int = 5, seed: int = 0,
                   n_jobs: Optional[int] = None, tune_max: int = 4000, limit_threads: bool = True) -> np.ndarray:
    """Out-of-fold membership probabilities from attack model ``model`` (lr, mlp, gb, knn).

    ``n_jobs`` sets the parallelism (joblib workers). With ``limit_threads`` the native
    BLAS/OpenMP pools are held to one thread per worker (threadpoolctl), so the attacks
    never run more threads than ``n_jobs`` gives them: on a busy machine, idle-spinning
    BLAS threads otherwise slow a logistic regression down twentyfold."""
    models = attack_models(seed, n_jobs)
    if model not in models:
        raise ValueError(f"unknown trained attack '{model}'; use one of {', '.join(models)}")
    est, grid = models[model]
    pipe = make_pipeline(StandardScaler(), est)
    x = attack_features(inp)
    y = inp.membership
    folds = int(min(folds, y.sum(), (~y).sum()))
    if folds < 2:
        raise ValueError("trained attacks need at least two members and two non-members")
    with warnings.catch_warnings():
        # joblib's note about nested parallelism and MLP early-stopping notices say nothing about the result
        warnings.filterwarnings("ignore", message=r".*sklearn\.utils\.parallel\.delayed.*")
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        if not limit_threads:
            return _out_of_fold(pipe, grid, model, x, y, folds, seed, tune_max)
        with threadpool_limits(limits=1):
            return _out_of_fold(pipe, grid, model, x, y, folds, seed, tune_max)


def _out_of_fold(pipe, grid, model, x, y, folds, seed, tune_max) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scores = np.empty(len(y))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        tr = _balanced(tr, y, rng)
        tune = tr if len(tr) <= tune_max else _balanced(rng.choice(tr, tune_max, replace=False), y, rng)
        params = {}
        if any(len(v) > 1 for v in grid.values()) and min(y[tune].sum(), (~y[tune]).sum()) >= 3:
            # sequential: the grid's fits take milliseconds, less than starting joblib workers
            gs = GridSearchCV(pipe, grid, cv=3, scoring="roc_auc")
            gs.fit(x[tune], y[tune])
            params = gs.best_params_
        fitted = clone(pipe).set_params(**params)
        if model == "knn":
            k = fitted.get_params()["kneighborsclassifier__n_neighbors"]
            fitted.set_params(kneighborsclassifier__n_neighbors=min(k, len(tr)))
        fitted.fit(x[tr], y[tr])
        scores[te] = fitted.predict_proba(x[te])[:, 1]
    return scores
