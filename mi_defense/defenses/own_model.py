"""A model of the user's in place of the package's ConvNet (or MLP).

``build(input_shape, num_classes, seed) -> tf.keras.Model`` returns an uncompiled Keras
model whose output is ``num_classes`` logits (no softmax). It is named by a string,
``path/to/file.py:build`` or ``package.module:build`` (the command line's ``--model``,
``AuditConfig.model``), or passed as a callable to ``mi_defense.audit(model=...)``, which
registers it under ``module:qualname`` for this process (``register``). TensorFlow's
global seed is set to ``seed`` before each call, so a model whose initialisers take no
seed of their own is still the same model for the same run.

The defenses keep their recipes (loss, optimiser, length, batch, augmentation) and train
the model the builder returns: ``none``, ``subset`` and the model trained on a FRePo set
through ``OwnModel`` (which adds the penultimate ``features`` the release attacks use),
``dpsgd`` inside tensorflow-privacy's DP Keras model class, which refuses batch
normalisation (``check_dp_layers``). FRePo's distillation pool and ``dpsgd-linear`` keep
their own architectures. ``summary`` is what every run records as its ``model``.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from mi_defense.errors import UserError
from mi_defense.tfenv import tf

_REGISTERED: Dict[str, Callable] = {}   # name -> callable given to mi_defense.audit(model=...) in this process
_LOADED: Dict[str, Callable] = {}       # spec -> callable loaded from a file or module
BATCH_STATISTICS = ("BatchNormalization", "BatchNormalizationBase", "SyncBatchNormalization")


def register(fn: Callable) -> str:
    """The name under which ``fn`` is recorded (``module:qualname``; a script's file name for
    ``__main__``), resolvable by ``load_builder`` in this process."""
    if not callable(fn):
        raise UserError("model must be a function build(input_shape, num_classes, seed) or 'file.py:build', "
                        f"got {type(fn).__name__}")
    module = getattr(fn, "__module__", None) or "?"
    qual = getattr(fn, "__qualname__", None) or type(fn).__name__
    if module == "__main__":
        path = getattr(importlib.import_module("__main__"), "__file__", None)
        module = Path(path).name if path else "__main__"
    name = f"{module}:{qual}"
    _REGISTERED[name] = fn
    return name


def _load_file(path: Path, spec: str):
    name = "mi_defense_own_model_" + "".join(c if c.isalnum() else "_" for c in str(path.resolve()))
    loader_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(loader_spec)
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: report what broke on one line
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise UserError(f"model {spec}: running {path} failed ({type(exc).__name__}: {first}); fix that file") from None
    return module


def load_builder(spec: str) -> Callable:
    """The callable ``spec`` names: ``path/to/file.py:build``, ``package.module:build``, or a
    name ``register`` gave. A missing file, module or attribute, or an attribute that is not
    callable, is a one-line ``UserError``."""
    if spec in _REGISTERED:
        return _REGISTERED[spec]
    if spec in _LOADED:
        return _LOADED[spec]
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise UserError(f"model {spec!r}: give path/to/file.py:FUNCTION or package.module:FUNCTION")
    if where.endswith(".py") or "/" in where or os.sep in where:
        path = Path(where)
        if not path.is_file():
            raise UserError(f"model {spec}: no such file {where}")
        module = _load_file(path, spec)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as exc:
            raise UserError(f"model {spec}: no module named {exc.name or where!r}; "
                            f"give a file path (path/to/{where}.py:{attr}) or install the module") from None
    try:
        obj = functools.reduce(getattr, attr.split("."), module)
    except AttributeError:
        raise UserError(f"model {spec}: {where} has no attribute {attr!r}") from None
    if not callable(obj):
        raise UserError(f"model {spec}: {attr} is not callable ({type(obj).__name__}); "
                        "name a function build(input_shape, num_classes, seed)")
    _LOADED[spec] = obj
    return obj


def _absolute(spec: str) -> str:
    """``spec`` with a file path made absolute (a Ray worker may run elsewhere)."""
    where, _, attr = spec.rpartition(":")
    return f"{Path(where).resolve()}:{attr}" if spec not in _REGISTERED and Path(where).is_file() else spec


def _from_spec(source: str, origin: str) -> "ModelBuilder":
    builder = ModelBuilder(load_builder(origin), source)
    builder.origin = origin
    return builder


class ModelBuilder:
    """A checked ``build``: every model it returns is a Keras model with ``num_classes`` outputs.
    It pickles as its name (a function given to ``audit()`` as itself), so the Ray executor
    can ship an audit's set-up to its workers, which load the builder again."""

    def __init__(self, fn: Callable, source: str):
        self.fn, self.source = fn, source
        self.origin = _absolute(source)
        self._probe = None

    def __reduce__(self):
        if self.source in _REGISTERED:
            return ModelBuilder, (self.fn, self.source)
        return _from_spec, (self.source, self.origin)

    def __call__(self, input_shape: Sequence[int], num_classes: int, seed: int):
        from mi_defense.training.loop import check_user_model

        shape = tuple(int(s) for s in input_shape)
        tf.random.set_seed(int(seed))
        model = self.fn(shape, int(num_classes), int(seed))
        if not isinstance(model, tf.keras.Model):
            raise UserError(f"model {self.source} returned a {type(model).__name__}, not a tf.keras.Model; "
                            f"return an uncompiled Keras model with {num_classes} outputs")
        try:
            check_user_model(model, np.zeros((1,) + shape, np.float32), int(num_classes))
        except UserError as exc:
            raise UserError(f"model {self.source}: {exc}") from None
        return model

    def probe(self, input_shape: Sequence[int], num_classes: int):
        """One model (seed 0), built once: checks ``build`` before anything is trained."""
        if self._probe is None:
            self._probe = self(input_shape, num_classes, 0)
        return self._probe


def as_builder(value, input_shape: Sequence[int], num_classes: int) -> Optional[ModelBuilder]:
    """``value`` (None, a spec string, a callable or a ``ModelBuilder``) as a checked builder,
    probed once on ``input_shape``."""
    if value is None or isinstance(value, ModelBuilder):
        return value
    if isinstance(value, str):
        builder = ModelBuilder(load_builder(value), value)
    else:
        builder = ModelBuilder(value, register(value))
    builder.probe(input_shape, num_classes)
    return builder


def _penultimate(net) -> Callable:
    """``f(x, training)``: the input of ``net``'s last layer (Sequential and functional
    models); ``net``'s own outputs for a subclassed model."""
    if isinstance(net, tf.keras.Sequential) and len(net.layers) > 1:
        def f(x, training=False):
            for layer in net.layers[:-1]:
                x = layer(x, training=training)
            return x
        return f
    try:
        sub = tf.keras.Model(net.inputs, net.layers[-1].input)
    except (AttributeError, ValueError, TypeError, IndexError):
        return lambda x, training=False: net(x, training=training)
    return lambda x, training=False: sub(x, training=training)


class OwnModel(tf.keras.Model):
    """The user's model with the ``features`` (flattened input of its last layer) that the
    audit's release attacks compare a released set with."""

    def __init__(self, net: tf.keras.Model, source: str):
        super().__init__(name="own_model")
        self.net = net
        self.source = source
        self._features = _penultimate(net)  # a closure: Keras tracks no second copy of the layers

    def call(self, x, training=False):
        return self.net(x, training=training)

    def features(self, x, training=False):
        f = self._features(x, training=training)
        return tf.reshape(f, [tf.shape(f)[0], -1])


def check_dp_layers(model, source: str) -> None:
    """DP-SGD clips each example's gradient: a layer with batch statistics mixes them."""
    for layer in [model, *model.submodules]:
        if any(c.__name__ in BATCH_STATISTICS for c in type(layer).__mro__):
            raise UserError(f"dpsgd cannot train model {source}: its layer '{layer.name}' ({type(layer).__name__}) "
                            "normalises over the batch, which mixes the examples' gradients; "
                            "use tf.keras.layers.GroupNormalization or LayerNormalization there, or no normalisation")


def unwrap(model):
    """The user's own network inside ``OwnModel`` or a DP wrapper (one nested Keras model)."""
    if isinstance(model, OwnModel):
        return model.net
    inner = [la for la in getattr(model, "layers", []) if not isinstance(la, tf.keras.layers.InputLayer)]
    return inner[0] if len(inner) == 1 and isinstance(inner[0], tf.keras.Model) else model


def summary(model, source: str) -> dict:
    """What a run records as its ``model``: where it came from, its layers' classes and its parameter count."""
    net = unwrap(model)
    return {"source": source, "layers": [type(la).__name__ for la in net.layers], "parameters": int(net.count_params())}


def layer_details(model) -> list:
    """One row per layer of the user's network: its name, class, output shape (when Keras
    knows it) and parameter count (``audit_model``'s record and report)."""
    rows = []
    for la in unwrap(model).layers:
        try:
            shape = [None if d is None else int(d) for d in la.output.shape]
        except (AttributeError, ValueError, TypeError):
            shape = None
        rows.append({"name": la.name, "class": type(la).__name__, "output_shape": shape,
                     "parameters": int(la.count_params())})
    return rows


def describe(s: dict) -> str:
    """``summary`` as the recipe's sentence says it."""
    layers = ", ".join(s["layers"])
    return f"model {s['source']} ({layers}; {s['parameters']:,} parameters)"
