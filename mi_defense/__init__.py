"""mi_defense: dataset distillation (FRePo) as a defense against membership inference.

The pipeline is the package layout: ``data`` -> ``models`` -> ``distill`` ->
``train``/``defenses`` -> ``audit`` -> ``report``. The membership-inference attack
suite lives in the separate ``attacks`` package, which never imports this one.
"""
__version__ = "0.1.0"

from mi_defense.errors import UserError  # noqa: E402,F401
