# Integer kernels of the recurrent step, in three tiers with identical results:
#   "native": the C module `rkernel` (modules/), when it can be imported;
#   "viper":  MicroPython's viper emitter, where `micropython.viper` exists (rp2, esp32);
#   "python": plain Python (CPython, MicroPython without native emitters, e.g. the WebAssembly build).
# The contract (docs/format.md, host/reku/model/reference.py) fixes every rounding; all tiers follow it.
# Buffers: int8 vectors are array('b'), int32 vectors array('i'), packed weights/bytes any buffer.

TIER = "python"

H_LIM = 1 << 23          # residual stream clamp (Q8)
QA = 12                  # r, k, v, the time-mixing state and the channel-mixing hidden are Q12 (real * 4096)
A_LIM = (8 << QA) - 1    # clamp of r, k, v and the channel-mixing hidden before squaring (real +-8)
S_LIM = 1 << 21          # clamp of the time-mixing state (Q12, real +-512)


def fp4_bytes(n):
    """Bytes of n packed FP4 values (n a multiple of 8): n/2 bytes of 4-bit codes, then the 2-bit block shifts,
    four per byte (docs/format.md, "Packed FP4 activations"; the kernels are in rkfw.fp4 and the native module)."""
    return (n >> 1) + ((n + 31) >> 5)


def _select():
    """The best tier available here: the native module; else the Python kernels (rkfw.kernels_py, also PYTHON,
    the reference tier), with viper's where the port has the emitter."""
    g = globals()
    try:
        import rkernel
        if not hasattr(rkernel, "tmv4"):      # a build older than the packed FP4 activations: not used
            raise ImportError
        for name in NAMES + OPTIONAL:
            f = getattr(rkernel, name, None)
            if f is not None:
                g[name] = f
        g["TIER"] = "native"
        return
    except ImportError:
        pass
    from rkfw import kernels_py
    for name in NAMES:
        g[name] = getattr(kernels_py, name)
    g["PYTHON"] = Tier("python", g)
    import sys
    if sys.implementation.name != "micropython":
        return
    try:
        from rkfw import kernels_viper      # SyntaxError/ValueError where the port has no viper emitter
    except (ImportError, SyntaxError, ValueError, NotImplementedError):
        return
    for name in kernels_viper.PROVIDES:
        g[name] = getattr(kernels_viper, name)
    g["TIER"] = "viper"


NAMES = ("tmv", "quant_i8", "shift", "copy", "requant", "wkv", "square", "add", "embed", "embed_t", "dot_rows")
# Kernels only some tiers have (None elsewhere): layer(h, P, W) runs a whole layer's step in one call (the
# native module; rk_layer in modules/rkernel/rk_core.c), the same kernel sequence as rkfw.infer.Engine.step;
# quant_fp4, shift4, tmv4 write and read packed FP4 activations (native module; Python versions in rkfw.fp4).
OPTIONAL = ("layer", "quant_fp4", "shift4", "tmv4")
layer = quant_fp4 = shift4 = tmv4 = None


class Tier:
    """One set of kernels as attributes (name, and the functions of NAMES)."""

    def __init__(self, name, funcs):
        self.TIER = name
        for k in NAMES:
            setattr(self, k, funcs[k])
        for k in OPTIONAL:
            setattr(self, k, funcs.get(k))


_select()


def best():
    """The tier selected at import (native > viper > python) as a Tier."""
    g = globals()
    return Tier(g["TIER"], g)
