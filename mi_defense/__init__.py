"""mi_defense: dataset distillation (FRePo) as a defense against membership inference.

The pipeline is the package layout: ``data`` -> ``models`` -> ``training`` ->
``distill`` -> ``defenses`` -> ``audit`` -> ``report``. The membership-inference attack
suite lives in the separate ``attacks`` package, which never imports this one.

The Python API (``mi_defense.api``): ``distill(x, y, ipc=...) -> DistilledSet``,
``load_distilled(path)``, ``audit(..., out=...) -> AuditResults`` and
``report(results)``; the command line's other commands are ``distill_dataset``,
``evaluate``, ``list_datasets`` and ``fetch_dataset``;
``audit_model(model, members=..., nonmembers=...)`` (``mi_defense.api_model``)
attacks a model already trained. ``mi_defense.distill``, ``.audit`` and ``.report`` are these
functions; their modules are imported by name (``from mi_defense.auditing import
AuditConfig``).
"""
from mi_defense.version import __version__  # noqa: E402,F401  (the package version, importable without the API)

from mi_defense.errors import ExposureWarning, UserError  # noqa: E402,F401
from mi_defense.api import (AuditResults, DistilledSet, audit, distill, distill_dataset, evaluate,  # noqa: E402,F401
                            fetch_dataset, list_datasets, load_distilled, report)
from mi_defense.api_model import audit_model  # noqa: E402,F401

__all__ = ["AuditResults", "DistilledSet", "ExposureWarning", "UserError", "audit", "audit_model", "distill",
           "distill_dataset", "evaluate", "fetch_dataset", "list_datasets", "load_distilled", "report"]
