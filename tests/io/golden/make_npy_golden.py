#!/usr/bin/env python3
"""Writes the .npy golden files read by tests/io/test_npy.cpp (run with Debian's python3-numpy).

Values are simple formulas so the C++ test can recompute them: element k (C order) of each array
is expected(k) in test_npy.cpp.
"""
import os

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))


def ramp(dtype, shape, scale, offset):
    n = int(np.prod(shape)) if len(shape) else 1
    return (np.arange(n) * scale + offset).astype(dtype).reshape(shape)


def save(name, arr, version=None):
    path = os.path.join(here, name)
    if version is None:
        np.save(path, arr)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, arr, version=version)


# Valid files: (name, dtype, shape); element k is k * 0.5 - 1 (floats) or k - 2 (ints).
save("f4_2x3.npy", ramp("<f4", (2, 3), 0.5, -1))
save("f8_scalar.npy", ramp("<f8", (), 0.5, -1))
save("i8_4.npy", ramp("<i8", (4,), 1, -2))
save("i4_1x2x1x3.npy", ramp("<i4", (1, 2, 1, 3), 1, -2))
save("i1_5.npy", ramp("|i1", (5,), 1, -2))
save("u1_2x2.npy", ramp("|u1", (2, 2), 1, 2))
save("f4_0x3.npy", np.zeros((0, 3), "<f4"))
save("f4_3_v2.npy", ramp("<f4", (3,), 0.5, -1), version=(2, 0))
save("f4_3_v3.npy", ramp("<f4", (3,), 0.5, -1), version=(3, 0))
# Files minnow must reject.
save("bad_big_endian.npy", ramp(">f4", (3,), 0.5, -1))
save("bad_fortran.npy", np.asfortranarray(ramp("<f4", (2, 3), 0.5, -1)))
save("bad_bool.npy", np.array([True, False]))
save("bad_complex.npy", np.zeros((2,), "<c8"))
