# Low-rank corrections of ternary tensors ("<name>.lr": int8 U (R x r) then V (r x C), docs/format.md), applied
# after W @ x by every tier with its own kernels. rkfw.infer imports this module only for a model that has them.
from array import array

from rkfw import kernels as _kernels
from rkfw import rku
from rkfw.infer import zeros


def lr_scale(a, M, S, out):
    """out[0], out[1] = (m, s) of the dynamic requantisation of a low-rank correction (docs/format.md):
    m/2**s ~= a*M/2**S, with a = amax of V@x (quant_i8's return), M/2**S the factor stored on the tensor's .lr.
    Integers only; every intermediate < 2**30 (m < 2**10, 1 <= s <= 30). Written into the caller's 2-list, so the
    engine's step allocates nothing (a returned tuple would, per corrected tensor and token). Returns out."""
    while a >= 1024:
        a >>= 1
        S -= 1
    m = a * M
    while m >= 1024:
        m >>= 1
        S -= 1
    if S > 30:
        m >>= S - 30
        S = 30
    while S < 1:
        m <<= 1
        S += 1
    out[0] = m
    out[1] = S
    return out


def _i8(engine, data):
    """int8 factor data as a buffer every tier reads as signed: the native and viper kernels read any 1-byte
    buffer as int8, the Python tier indexes it (CPython: a zero-copy signed view; MicroPython's memoryview has no
    cast: a copy, made only for the Python tier)."""
    try:
        return data.cast("b")
    except (AttributeError, TypeError, ValueError):
        pass
    if engine.tier == "python":
        return array("b", bytes(data))
    return data


def setup(engine, model, n4):
    """engine.lr: {tensor name: (U, V, r, M, S, z, zq)}, and the working buffers the corrections share. A loop
    over the names (not .items()) left 480 B less on the heap of MicroPython (WebAssembly build)."""
    d, f = engine.d, engine.f
    engine.lr = {}
    for name in model.tensors:
        if name.endswith(".lr"):
            c = model.tensors[name]
            U, V, r = rku.factors(c)
            engine.lr[name[:-3]] = (_i8(engine, U), _i8(engine, V), r, c.M, c.S, zeros("i", r), zeros("b", r))
    engine.lr_c = zeros("i", max(d, f, engine.O, engine.dk))
    engine.lr_ms = [0, 0]
    if n4:
        from rkfw import fp4 as _fp4
        engine.lr_x = zeros("b", max(d, f))      # a packed FP4 input unpacked for V @ x
        engine.unpack4 = _fp4.unpack4


def correct(engine, W, R, C, x, y, fp4):
    """y += the correction of W (a no-op for a tensor without one): z = V @ x, zq = quant_i8(z), y += requant(U @
    zq) with the scale lr_scale gives."""
    lr = engine.lr.get(W.name)
    if lr is None:
        return
    k = engine.kern
    U, V, r, M, S, z, zq = lr
    if fp4:
        engine.unpack4(x, C, engine.lr_x)
        x = engine.lr_x
    k.dot_rows(V, r, C, x, z)
    a = k.quant_i8(z, zq)
    if a:
        c = engine.lr_c
        k.dot_rows(U, R, r, zq, c)
        ms = lr_scale(a, M, S, engine.lr_ms)
        k.requant(c, R, ms[0], ms[1], -_kernels.H_LIM, _kernels.H_LIM)
        k.add(y, c)
