"""The memory a FRePo distillation allocates, estimated before anything is allocated.

``estimate`` adds the arrays the outer loop holds (``distill.frepo``, ``distill.real_pool``,
``distill.pool``), in bytes of float32 unless said otherwise:

* the real pool: the members' pixels (1 byte each when uint8, else 4);
* the synthetic set with its gradient and LAMB's two moments: 4 copies of
  ``K * ipc * H * W * C`` values, and as many of its labels (``K * ipc * K``);
* the activations the ConvNet keeps for the synthetic set's gradient: about
  ``8/3 * width * H * W`` values per synthetic image (two tensors of ``width`` channels per
  block, its ReLU output and the pooled input of the next convolution, each block a
  quarter of the size of the one before), twice that with flips;
* the kernel between synthetic images and its factorisation: ``2 * S^2`` (``S`` synthetic
  images, twice that with flips), and ``S * batch_real`` against the real batch;
* the real batch through the ConvNet (forward only) and the online step's batch
  (``min(S, max_online_batch)`` images, forward and backward);
* DP-FRePo: one clipped gradient per real example (``K * F`` values in the readout space,
  ``S * (F + K)`` in the features space, ``F`` the feature size).

It leaves out TensorFlow's own memory, the pool models (small) and transient copies, so it
is a lower bound: a distillation it refuses cannot fit.
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Sequence

from mi_defense.errors import UserError

F32 = 4
GIB = 2 ** 30


def machine_memory() -> Optional[int]:
    """Bytes of physical memory of this machine, or None where the system does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def estimate(cfg, n_members: int, input_shape: Sequence[int], num_classes: int, pixel_bytes: int = 1,
             ipc: Optional[int] = None) -> Dict[str, int]:
    """Bytes per part of a distillation of ``n_members`` images of ``input_shape`` into
    ``ipc`` (default ``cfg.ipc``) synthetic images per class (module docstring)."""
    h, w, c = (int(v) for v in input_shape) if len(input_shape) == 3 else (1, 1, int(input_shape[0]))
    d = h * w * c
    ipc = cfg.ipc if ipc is None else ipc
    n_syn = num_classes * ipc
    flip = cfg.flip if cfg.flip is not None else (len(input_shape) == 3 and c == 3)
    s = n_syn * (2 if flip else 1)
    act = 8 * cfg.width * h * w // 3
    feat = cfg.width * max(1, h >> cfg.depth) * max(1, w >> cfg.depth)
    parts = {
        "real pool": n_members * d * (1 if pixel_bytes == 1 else F32),
        "synthetic set and optimiser state": 4 * n_syn * (d + num_classes) * F32,
        "activations for the gradient": s * act * F32,
        "kernel": (2 * s * s + s * cfg.batch_real) * F32,
        "real and online batches": (cfg.batch_real * act // 2 + min(s, cfg.max_online_batch) * act) * F32,
    }
    if cfg.private:
        per_example = num_classes * feat if cfg.clip_space == "readout" else s * (feat + num_classes)
        parts["per-example gradients (DP)"] = cfg.batch_real * per_example * F32
    return parts


def check_memory(cfg, n_members: int, input_shape: Sequence[int], num_classes: int, pixel_bytes: int = 1,
                 memory: Optional[int] = None) -> None:
    """Refuse, with the estimate and the fix, a distillation whose arrays cannot fit in this
    machine's memory (``memory`` bytes; default: the physical memory)."""
    memory = machine_memory() if memory is None else memory
    parts = estimate(cfg, n_members, input_shape, num_classes, pixel_bytes)
    total = sum(parts.values())
    if memory is None or total <= memory:
        return
    fits = lambda k: sum(estimate(cfg, n_members, input_shape, num_classes, pixel_bytes, ipc=k).values()) <= memory
    lo, hi = 0, cfg.ipc  # the largest ipc that fits, by bisection (the estimate grows with ipc)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    biggest = max(parts, key=parts.get)
    fix = (f"use --ipc {lo} or less, or a smaller --width or --batch-real" if lo
           else "use a smaller --width or --batch-real, or a machine with more memory")
    raise UserError(f"a distillation of {num_classes * cfg.ipc} synthetic images (ipc={cfg.ipc}) needs at least "
                    f"{total / GIB:.1f} GiB ({biggest} {parts[biggest] / GIB:.1f} GiB), more than this machine's "
                    f"{memory / GIB:.1f} GiB of memory; {fix}")
