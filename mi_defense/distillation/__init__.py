"""FRePo ("Dataset Distillation using Neural Feature Regression") and DP-FRePo: the outer
loop (``frepo``), its kernel regression (``krr``) and optimiser (``lamb``), the model pool
(``pool``) and private examples (``real_pool``), the DP mechanism (``dp``, ``dp_krr``,
``dp_readout``), the release (``artifact``: ``DistilledSet`` and ``distilled.npz``), its
private run record (``record``) and the command behind ``mi-defense distill`` (``api``).
The public entry point is ``mi_defense.distill(x, y, ...)``."""
