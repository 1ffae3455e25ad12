"""The end-to-end audit: train every defense, attack it with the whole suite.

What to audit is ``mi_defense.config.audit.AuditConfig`` (exported here); ``plan`` lists
the runs; ``setup`` prepares and checks the audit (writing nothing), ``compute`` trains one
run, ``executors`` run them here or on Ray, ``scoring`` scores the cached runs, and
``core`` (``Audit``, ``run_audit``) orchestrates and is the one that writes; ``evidence`` turns the scores
into the declared evidence (primary attack, epsilon lower bound, the strongest attack
selected on held-out examples); ``results`` reads them back as typed objects. Names load on
first use, so reading results does not import TensorFlow.
"""
import importlib

_EXPORTS = {"Audit": "auditing.core", "release_pixel_space": "auditing.inputs", "run_audit": "auditing.core",
            "AuditConfig": "config.audit", "load_audit_config": "config.toml", "AuditResults": "auditing.results",
            "DefenseResult": "auditing.results"}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"mi_defense.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
