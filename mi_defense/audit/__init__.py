"""The end-to-end audit: train every defense, attack it with the whole suite.

What to audit is ``mi_defense.config.audit.AuditConfig`` (exported here); ``plan`` lists
the runs; ``core`` trains the runs (cached) and scores them; ``evidence`` turns the scores
into the declared evidence (primary attack, epsilon lower bound, the strongest attack
selected on held-out examples); ``results`` reads them back as typed objects. Names load on first use, so reading results does not
import TensorFlow.
"""
import importlib

_EXPORTS = {"Audit": "audit.core", "release_pixel_space": "audit.inputs", "run_audit": "audit.core", "AuditConfig": "config.audit",
            "load_audit_config": "config.toml", "AuditResults": "audit.results", "DefenseResult": "audit.results"}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"mi_defense.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
