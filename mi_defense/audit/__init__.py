"""The end-to-end audit: train every defense, attack it with the whole suite.

``config`` says what to audit; ``core`` trains the runs (cached) and scores them;
``evidence`` turns the scores into the declared evidence (primary attack, epsilon lower
bound, the strongest attack selected on held-out examples).
"""
from mi_defense.audit.config import AuditConfig, load_audit_config
from mi_defense.audit.core import Audit, release_pixel_space, run_audit

__all__ = ["Audit", "AuditConfig", "load_audit_config", "release_pixel_space", "run_audit"]
