"""Thin numpy-friendly wrapper over the CPython build of the native kernels (reku._rkernel, built by
`pip install -e .` from modules/rkernel/rk_core.c, the same C core as the board module `rkernel`).

    from reku import native
    y = native.tmv(packed, R, C, x)          # int32 (R,), packed = .rku ternary bytes, x int8-valued
    x8, amax = native.quant_i8(h)            # like reference.quant_i8, on int32-range input
    eng = infer.Engine(model, native.tier()) # the firmware engine on CPython with C kernels

The raw module (`native.raw()`) takes the firmware's buffer arguments unchanged (array('b'), array('i'),
bytes, memoryview), exactly like `rkernel` on a board.

On the host, tmv runs the extension's fast path `tmv_host` (modules/rkernel/rk_host.c): each immutable
weight buffer (bytes, or a read-only view of bytes such as a loaded model's tensors) is repacked once to 2 bits
per weight and multiplied with AVX2 when the CPU has it; anything else runs the portable rk_tmv, same results.
`simd(False)` (or REKU_NO_SIMD=1 in the environment) forces the portable path. See docs/native.md.
"""

from array import array

import numpy as np

from .errors import RekuError

_mod = None


def raw():
    """The extension module reku._rkernel; RekuError when it was not built."""
    global _mod
    if _mod is None:
        try:
            from . import _rkernel
        except ImportError as e:
            raise RekuError("the native kernels are not built (%s): run `pip install -e .` in the repository" % e)
        _mod = _rkernel
    return _mod


def available():
    try:
        raw()
        return True
    except RekuError:
        return False


def _i8(x, n=None):
    a = np.ascontiguousarray(x)
    if a.dtype != np.int8:
        if a.size and (a.min() < -128 or a.max() > 127):
            raise ValueError("int8 input out of range")
        a = a.astype(np.int8)
    if n is not None and a.size < n:
        raise ValueError("need %d values, got %d" % (n, a.size))
    return a


def _i32(h):
    a = np.ascontiguousarray(h)
    if a.dtype != np.int32:
        if a.size and (a.min() < -(1 << 31) or a.max() >= (1 << 31)):
            raise ValueError("int32 input out of range")
        a = a.astype(np.int32)
    return a


def tmv(packed, R, C, x, out=None):
    """y = W @ x for the packed ternary (R, C) matrix (bytes/uint8 array, .rku layout). Returns int32 (R,)."""
    y = np.empty(R, dtype=np.int32) if out is None else out
    w = packed if isinstance(packed, (bytes, bytearray, memoryview)) else np.ascontiguousarray(packed, np.uint8)
    raw().tmv_host(w, R, C, _i8(x, C), y)
    return y


def simd(on=None):
    """The kernel tmv runs on this host: "avx2" or "portable"; simd(False) forces portable, simd(True) the
    CPU's best."""
    return raw().host_simd() if on is None else raw().host_simd(bool(on))


def quant_i8(h):
    """(x int8, amax) = reference.quant_i8(h) for |h| < 2**24."""
    h = _i32(h)
    x = np.empty(h.size, dtype=np.int8)
    amax = raw().quant_i8(h, x)
    return x, amax


def quant_fp4(h):
    """(x int8, amax) = reference.quant_fp4(h) for |h| < 2**24, len(h) a multiple of 8: the kernel writes packed
    FP4 (rkfw.fp4.fp4_bytes), read back here with rkfw.fp4.unpack4."""
    from rkfw import fp4
    h = _i32(h)
    p = np.zeros(fp4.fp4_bytes(h.size), dtype=np.int8)
    amax = raw().quant_fp4(h, p)
    x = array("b", bytes(h.size))
    fp4.unpack4(p.tobytes(), h.size, x)
    return np.frombuffer(x, dtype=np.int8).copy(), amax


def tier():
    """The C kernels as an rkfw.kernels.Tier, for rkfw.infer.Engine(model, native.tier())."""
    from rkfw import kernels
    m = raw()
    funcs = {name: getattr(m, name) for name in kernels.NAMES + kernels.OPTIONAL}   # layer: rk_layer, as on boards
    funcs["tmv"] = m.tmv_host          # same arguments and results as rk_tmv; the host fast path
    return kernels.Tier("native", funcs)


def tiers():
    """The kernel tiers the firmware engine can run on this host: pure Python, and the C kernels when built."""
    from rkfw import kernels
    return [kernels.PYTHON] + ([tier()] if available() else [])
