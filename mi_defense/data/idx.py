"""The IDX format of MNIST and Fashion-MNIST (LeCun et al.).

Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then
one big-endian uint32 per dimension; the data follows, row-major.
"""
from __future__ import annotations

import struct

import numpy as np

from mi_defense.errors import DataError


def parse_idx(data: bytes, ndim: int, where: str) -> np.ndarray:
    """Parse IDX bytes holding uint8 data of ``ndim`` dimensions."""
    if len(data) < 4:
        raise DataError(f"{where}: file too short for an IDX header; replace it with a fresh copy")
    zero, dtype_code, nd = struct.unpack(">HBB", data[:4])
    expected_magic = 0x0800 | ndim
    magic = (dtype_code << 8) | nd
    if zero != 0 or magic != expected_magic:
        raise DataError(f"{where}: wrong IDX magic number 0x{struct.unpack('>I', data[:4])[0]:08x} (expected "
                        f"0x{expected_magic:08x}, uint8 with {ndim} dimensions); this is not the right file")
    header = 4 + 4 * nd
    if len(data) < header:
        raise DataError(f"{where}: truncated IDX header; replace the file with a fresh copy")
    shape = struct.unpack(">" + "I" * nd, data[4:header])
    size = int(np.prod(shape))
    if len(data) - header != size:
        raise DataError(f"{where}: IDX header announces {size} bytes of data for shape {shape}, the file has "
                        f"{len(data) - header}; the file is truncated or corrupt")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def images_and_labels(image_bytes: bytes, label_bytes: bytes, where: str, num_classes: int = 10):
    """Images as uint8 (N, H, W, 1) and labels as int64 (N,), checked for consistency."""
    x = parse_idx(image_bytes, 3, f"{where} images")
    y = parse_idx(label_bytes, 1, f"{where} labels")
    if len(x) != len(y):
        raise DataError(f"{where}: {len(x)} images but {len(y)} labels; "
                        "the image and label files do not belong together")
    if y.size and y.max() >= num_classes:
        raise DataError(f"{where}: label {int(y.max())} out of range 0..{num_classes - 1}; the label file is corrupt")
    return x[..., None].copy(), y.astype(np.int64)
