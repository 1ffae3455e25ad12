"""Import TensorFlow quietly.

TensorFlow prints start-up notices (CPU instruction sets, TensorRT, oneDNN) on stderr
that say nothing about the user's run. They are silenced here, before the first
import of TensorFlow, unless the user has set ``TF_CPP_MIN_LOG_LEVEL`` themselves.
"""
import logging
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

warnings.filterwarnings("ignore", message=r".*TensorFlow Addons.*")
warnings.filterwarnings("ignore", message=r".*tensorflow_probability.*")
warnings.filterwarnings("ignore", category=DeprecationWarning,
                        module=r"(tensorflow|keras|tensorflow_probability|tensorflow_privacy|dp_accounting).*")
warnings.filterwarnings("ignore", category=UserWarning, module=r"keras.*")

import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel(logging.ERROR)
try:  # absl prints a warning about its own log set-up on first use
    import absl.logging  # noqa: E402

    absl.logging.set_verbosity(absl.logging.ERROR)
except ImportError:  # pragma: no cover
    pass

# Never use TF32 inside matmuls / the kernel solve on Ampere+ GPUs: float32 means float32.
tf.config.experimental.enable_tensor_float_32_execution(False)

__all__ = ["tf"]


def machine() -> dict:
    """CPU count and the GPUs TensorFlow sees."""
    return {"cpus": os.cpu_count(), "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}
