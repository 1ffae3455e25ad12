"""Training models: the one package the rest of ``mi_defense`` (distillation included)
imports its training from. It imports nothing of ``distill``, ``defenses``, ``audit``,
``report`` or the CLI.

- ``schedules``: learning-rate schedules (``cosine_lr``, ``WarmupCosine``)
- ``targets``: centred one-hot targets and the per-example losses (``LOSSES``)
- ``augment``: the batch augmentations (``STYLES``, ``flip_crop``)
- ``loop``: the training loop (``train_model``) and its length (``resolve_steps``)
- ``stacked``: R ConvNets trained together in one graph (``train_models``)
- ``recipes``: how each kind of training set is trained and recorded (``describe``; the
  settings are ``mi_defense.config.RealRecipe`` and ``TrainConfig``)
- ``evaluate``: ``predict``, ``accuracy`` and a distilled set's test accuracy (``evaluate_set``)

Import from the modules (``from mi_defense.training.loop import train_model``); this
file imports none of them, so ``import mi_defense.training`` does not import TensorFlow.
"""
