"""What every benchmark records: peak resident memory and the device."""
from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def device_name() -> str:
    from mi_defense.tfenv import tf

    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name if gpus else tf.config.list_logical_devices("CPU")[0].name


def load_average() -> float:
    """The machine's 1-minute load average: how many runnable processes shared the cores."""
    import os

    return float(os.getloadavg()[0])
