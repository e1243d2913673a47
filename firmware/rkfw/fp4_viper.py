# Viper version of rkfw.fp4.tmv4 (a packed FP4 input; docs/format.md "Packed FP4 activations"), the O(rows x
# cols) FP4 kernel: rkfw.fp4 takes it where the port has the viper emitter and the native module is missing.
# A module of its own so that an int8 model never loads its machine code. Same integers as rkfw.fp4.tmv4.
import micropython
from array import array

from rkfw.kernels_viper import _D

_MAG = b"\x00\x01\x02\x03\x04\x06\x08\x0c"     # rkfw.fp4.FP4MAG
_V = array("i", [0] * 5)                          # the 5 decoded inputs of a column group (no allocation per call)


@micropython.viper
def _tmv4(w, R: int, C: int, x, y, dig, mag, vals):
    pw = ptr8(w)
    px = ptr8(x)
    py = ptr32(y)
    pd = ptr8(dig)
    pm = ptr8(mag)
    pv = ptr32(vals)
    G = C // 5
    sb = C >> 1
    for r in range(R):
        py[r] = 0
    for g in range(G):
        for k in range(5):
            j = 5 * g + k
            c = (int(px[j >> 1]) >> ((j & 1) << 2)) & 15
            v = int(pm[c & 7]) << ((int(px[sb + (j >> 5)]) >> ((j >> 2) & 6)) & 3)
            if c & 8:
                v = 0 - v
            pv[k] = v
        o = g
        for r in range(R):
            b = int(pw[o]) * 5
            acc = 0
            for k in range(5):
                t = int(pd[b + k])
                if t == 2:
                    acc += pv[k]
                elif t == 0:
                    acc -= pv[k]
            py[r] += acc
            o += G


def tmv4(w, R, C, x, y):
    _tmv4(w, R, C, x, y, _D, _MAG, _V)
