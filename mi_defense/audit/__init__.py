"""The end-to-end audit: train every defense, attack it with the whole suite.

``config`` says what to audit; ``plan`` lists the runs; ``core`` trains the runs (cached)
and scores them; ``evidence`` turns the scores into the declared evidence (primary attack,
epsilon lower bound, the strongest attack selected on held-out examples); ``results``
reads them back as typed objects. Names load on first use, so reading results does not
import TensorFlow.
"""
import importlib

_EXPORTS = {"Audit": "core", "release_pixel_space": "inputs", "run_audit": "core", "AuditConfig": "config",
            "load_audit_config": "config", "AuditResults": "results", "DefenseResult": "results"}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
