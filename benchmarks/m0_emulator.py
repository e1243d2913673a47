"""Cortex-M0+ measurement of the native kernels: compile modules/rkernel for armv6m with arm-none-eabi-gcc,
run the functions on unicorn's Cortex-M0 model (Thumb-2-only instructions fault there), count executed
instructions and convert them to Cortex-M0+ cycles.

Cycle model (Arm Cortex-M0+ Technical Reference Manual, r0p1, section 3.3 "Instruction set summary", for the
RP2040 configuration: single-cycle multiplier, zero-wait-state SRAM):
  data processing, MULS, ADR, extend, REV, compare, MOV/ADD to a low/high register ..... 1
  ADD/MOV with PC as destination, BX, BLX, B (unconditional) ........................... 2
  B<cond>: 2 when taken, 1 when not; BL ................................................. 2 / 1; 3
  LDR/STR of any width and addressing mode .............................................. 2
  LDM/STM/PUSH/POP of N registers: 1 + N; POP including PC: 3 + N
Weights, tables and vectors are assumed to be in SRAM (RP2040: 264 KB, no wait states). Weights read from
QSPI flash through the XIP cache add stalls on cache misses; see docs/native.md.

Usable as a module (tests/test_native_m0.py) and as a script:
    .venv/bin/python benchmarks/m0_emulator.py            # prints the figures as JSON
"""

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RK = ROOT / "modules" / "rkernel"
CC = "arm-none-eabi-gcc"
CFLAGS = ["-mcpu=cortex-m0plus", "-mthumb", "-std=c99", "-Wall", "-Wextra", "-Werror", "-ffunction-sections",
          "-fno-tree-loop-distribute-patterns"]      # as the natmod build: no memset/memcpy calls
FLASH = 0x10000000        # RP2040 XIP flash base (code)
RAM = 0x20000000          # RP2040 SRAM base
RAM_SIZE = 264 * 1024
STOP = 0x0FFFF000         # return address: a mapped page nothing else uses; emulation stops there
MHZ = 133


class ToolchainMissing(RuntimeError):
    pass


def toolchain():
    """Path of arm-none-eabi-gcc, or ToolchainMissing with the Debian packages to install."""
    p = shutil.which(CC)
    if not p:
        raise ToolchainMissing("%s not found: install the Debian package gcc-arm-none-eabi (`make test` does, "
                               "through .ci/provision)" % CC)
    return p


def _run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed:\n%s%s" % (" ".join(map(str, cmd)), r.stdout, r.stderr))
    return r.stdout


def core_size(opt="-O2", out=None):
    """Bytes of code + read-only data of rk_core.c compiled for armv6m (text of the object file)."""
    toolchain()
    out = Path(out or ROOT / "build" / "m0")
    out.mkdir(parents=True, exist_ok=True)
    obj = out / ("rk_core%s.o" % opt)
    _run([CC] + CFLAGS + [opt, "-c", str(RK / "rk_core.c"), "-o", str(obj)])
    text, data, bss = [int(v) for v in _run(["arm-none-eabi-size", str(obj)]).splitlines()[1].split()[:3]]
    return {"text": text, "data": data, "bss": bss}


class Image:
    """The kernels linked for the emulator: flat binary at FLASH plus symbol addresses."""

    def __init__(self, opt="-O2", out=None, no_asm=False):
        toolchain()
        out = Path(out or ROOT / "build" / "m0")
        out.mkdir(parents=True, exist_ok=True)
        tag = opt + ("-noasm" if no_asm else "")
        elf = out / ("kernels%s.elf" % tag)
        binf = out / ("kernels%s.bin" % tag)
        flags = CFLAGS + [opt] + (["-DRK_NO_ASM"] if no_asm else [])
        _run([CC] + flags + ["-I", str(RK), str(RK / "rk_core.c"), str(RK / "rk_baseline.c"),
                             "-nostdlib", "-Wl,-e,rk_tmv",
                             "-Wl,-Ttext=0x%x" % FLASH,
                             "-Wl,-Tbss=0x%x" % RAM, "-o", str(elf), "-lgcc"])
        _run(["arm-none-eabi-objcopy", "-O", "binary", "--only-section=.text", "--only-section=.rodata",
              str(elf), str(binf)])
        self.code = binf.read_bytes()
        self.sym = {}
        for line in _run(["arm-none-eabi-nm", str(elf)]).splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "Tt":
                self.sym[parts[2]] = int(parts[0], 16)


def _arm():
    from unicorn import arm_const
    return arm_const


def new_cpu(model):
    """A unicorn ARM CPU of the given model. Not UC_MODE_MCLASS: unicorn 2.1 then always emulates a
    Cortex-M33 whatever model is set (checked by tests/test_native_m0.py); the model itself makes it M-profile."""
    from unicorn import UC_ARCH_ARM, UC_MODE_THUMB, Uc
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
    uc.ctl_set_cpu_model(model)
    if uc.ctl_get_cpu_model() != model:
        raise RuntimeError("unicorn did not take CPU model %d" % model)
    return uc


class M0:
    """A Cortex-M0 (unicorn) with the kernels loaded; call(name, *args) runs a function and counts."""

    def __init__(self, image):
        self.A = A = _arm()
        self.img = image
        self.uc = new_cpu(A.UC_CPU_ARM_CORTEX_M0)
        size = (len(image.code) + 0xFFFF) & ~0xFFFF
        self.uc.mem_map(FLASH, size)
        self.uc.mem_write(FLASH, image.code)
        self.uc.mem_map(RAM, RAM_SIZE)
        self.uc.mem_map(STOP, 0x1000)
        self.uc.mem_write(STOP, b"\x00\xbf" * 8)      # nops (never executed: emulation stops at STOP)
        self.heap = RAM
        self.stack_top = RAM + RAM_SIZE
        self._costs = {}
        self.reset_heap()

    def reset_heap(self):
        self.heap = RAM

    def alloc(self, data_or_size, align=4):
        self.heap = (self.heap + align - 1) & ~(align - 1)
        addr = self.heap
        if isinstance(data_or_size, int):
            n = data_or_size
            self.uc.mem_write(addr, b"\x00" * n)
        else:
            data = bytes(data_or_size)
            n = len(data)
            self.uc.mem_write(addr, data)
        self.heap += max(n, 1)
        if self.heap > self.stack_top - 16384:
            raise MemoryError("emulator RAM exhausted")
        return addr

    def read(self, addr, n):
        return bytes(self.uc.mem_read(addr, n))

    def _cost(self, addr):
        """(cycles if not a taken branch, cycles if taken, size) of the instruction at addr."""
        c = self._costs.get(addr)
        if c is not None:
            return c
        hw = int.from_bytes(self.uc.mem_read(addr, 2), "little")
        top5 = hw >> 11
        if top5 in (0b11101, 0b11110, 0b11111):                  # 32-bit: BL (or MSR/MRS/barriers)
            hw2 = int.from_bytes(self.uc.mem_read(addr + 2, 2), "little")
            c = (3, 3, 4) if (hw >> 11) == 0b11110 and (hw2 >> 14) == 0b11 else (4, 4, 4)
        elif hw >> 10 == 0b010001:                                  # high-register ADD/CMP/MOV, BX/BLX
            op = (hw >> 8) & 3
            rd = (hw & 7) | ((hw >> 4) & 8)
            if op == 3:
                c = (2, 2, 2)
            elif op in (0, 2) and rd == 15:
                c = (2, 2, 2)
            else:
                c = (1, 1, 2)
        elif hw >> 11 == 0b01001 or hw >> 12 in (0b0101, 0b0110, 0b0111, 0b1000, 0b1001):
            c = (2, 2, 2)                                           # loads and stores
        elif hw >> 12 == 0b1100:                                    # LDM/STM
            n = bin(hw & 0xFF).count("1")
            c = (1 + n, 1 + n, 2)
        elif hw >> 9 == 0b1011010:                                  # PUSH
            n = bin(hw & 0x1FF).count("1")
            c = (1 + n, 1 + n, 2)
        elif hw >> 9 == 0b1011110:                                  # POP
            n = bin(hw & 0x1FF).count("1")
            c = (3 + n, 3 + n, 2) if hw & 0x100 else (1 + n, 1 + n, 2)
        elif hw >> 12 == 0b1101 and ((hw >> 8) & 0xF) < 14:         # B<cond>
            c = (1, 2, 2)
        elif hw >> 11 == 0b11100:                                   # B
            c = (2, 2, 2)
        else:
            c = (1, 1, 2)
        self._costs[addr] = c
        return c

    def call(self, name, *args, count=True):
        """Runs function `name` with integer args (AAPCS: r0-r3, then the stack). Returns (r0, instructions,
        cycles); counting can be turned off for speed."""
        from unicorn import UC_HOOK_CODE
        A = self.A
        uc = self.uc
        sp = self.stack_top - 256
        stack_args = list(args[4:])
        for i, v in enumerate(stack_args):
            uc.mem_write(sp + 4 * i, (v & 0xFFFFFFFF).to_bytes(4, "little"))
        for i, v in enumerate(args[:4]):
            uc.reg_write([A.UC_ARM_REG_R0, A.UC_ARM_REG_R1, A.UC_ARM_REG_R2, A.UC_ARM_REG_R3][i], v & 0xFFFFFFFF)
        uc.reg_write(A.UC_ARM_REG_SP, sp)
        uc.reg_write(A.UC_ARM_REG_LR, STOP | 1)
        state = [0, 0, None]          # instructions, cycles, pending (addr_next, taken_cost)
        costs = self._cost

        def hook(uc_, addr, size, _):
            pend = state[2]
            if pend is not None and addr != pend[0]:
                state[1] += pend[1]
            c = costs(addr)
            state[0] += 1
            state[1] += c[0]
            state[2] = (addr + c[2], c[1] - c[0]) if c[1] != c[0] else None

        h = uc.hook_add(UC_HOOK_CODE, hook, begin=FLASH, end=FLASH + len(self.img.code)) if count else None
        # translated blocks cached by an earlier uncounted call carry no hook: drop them
        uc.ctl_flush_tb()
        try:
            uc.emu_start(self.img.sym[name] | 1, STOP, timeout=0, count=0)
        finally:
            if h is not None:
                uc.hook_del(h)
                uc.ctl_flush_tb()
        pend = state[2]
        if pend is not None and pend[0] != STOP:
            state[1] += pend[1]
        r0 = uc.reg_read(A.UC_ARM_REG_R0)
        return r0, state[0], state[1]


def pack(W):
    """Ternary (R, C) -> packed bytes (the .rku layout; C padded to a multiple of 5 with zero weights)."""
    W = np.asarray(W, dtype=np.int64)
    R, C = W.shape
    G = (C + 4) // 5
    Wp = np.zeros((R, G * 5), dtype=np.int64)
    Wp[:, :C] = W
    g = (Wp + 1).reshape(R, G, 5)
    return (g * np.array([1, 3, 9, 27, 81])).sum(-1).astype(np.uint8).tobytes()


SCRATCH = 8 * 244 * 4


def tmv(m, W, x, count=True):
    """Runs rk_tmv on the emulator. Returns (y, instructions, cycles)."""
    R, C = W.shape
    m.reset_heap()
    w = m.alloc(pack(W))
    xa = m.alloc(np.asarray(x, dtype=np.int8).tobytes())
    ya = m.alloc(4 * R)
    sc = m.alloc(SCRATCH)
    _, n, cyc = m.call("rk_tmv", w, R, C, xa, ya, sc, count=count)
    return np.frombuffer(m.read(ya, 4 * R), dtype=np.int32).copy(), n, cyc


def tmv_i8(m, W, x, count=True):
    R, C = W.shape
    m.reset_heap()
    w = m.alloc(np.asarray(W, dtype=np.int8).tobytes())
    xa = m.alloc(np.asarray(x, dtype=np.int8).tobytes())
    ya = m.alloc(4 * R)
    _, n, cyc = m.call("rk_tmv_i8", w, R, C, xa, ya, count=count)
    return np.frombuffer(m.read(ya, 4 * R), dtype=np.int32).copy(), n, cyc


def _fp4():
    sys.path.insert(0, str(ROOT / "firmware"))
    from rkfw import fp4
    return fp4


def quant(m, name, h, count=True):
    """Runs rk_quant_i8 or rk_quant_fp4: (values int8, amax, instructions, cycles); quant_fp4's packed output
    is read back with rkfw.fp4.unpack4."""
    h = np.asarray(h, dtype=np.int32)
    nb = _fp4().fp4_bytes(len(h)) if name == "rk_quant_fp4" else len(h)
    m.reset_heap()
    ha = m.alloc(h.tobytes())
    xa = m.alloc(nb)
    amax, n, cyc = m.call(name, ha, len(h), xa, count=count)
    raw = m.read(xa, nb)
    if nb == len(h):
        return np.frombuffer(raw, dtype=np.int8).copy(), amax, n, cyc
    x = np.zeros(len(h), dtype=np.int8)
    _fp4().unpack4(bytes(raw), len(h), x)
    return x, amax, n, cyc


def tmv4(m, W, xp, count=True):
    """Runs rk_tmv4 (packed FP4 input xp, bytes). Returns (y, instructions, cycles)."""
    R, C = W.shape
    m.reset_heap()
    w = m.alloc(pack(W))
    xa = m.alloc(bytes(xp))
    ya = m.alloc(4 * R)
    sc = m.alloc(SCRATCH)
    _, n, cyc = m.call("rk_tmv4", w, R, C, xa, ya, sc, count=count)
    return np.frombuffer(m.read(ya, 4 * R), dtype=np.int32).copy(), n, cyc


def layer(m, P, W, h, count=True):
    """Runs rk_layer on the emulator with an engine's per-layer tuples (rkfw.infer.Engine.lp[i], .lw[i]) and
    residual stream h: the structs rk_layer_t / rk_work_t laid out as on a 32-bit ARM. Updates h and the state
    and scratch buffers of W in place, as the native module would. Returns (instructions, cycles)."""
    m.reset_heap()
    ptrs = [m.alloc(bytes(b)) for b in P[:13]]
    pa = m.alloc(struct.pack("<13I6i6ii", *ptrs, *P[13:19], *P[19:25], 1 if P[25] else 0))
    wa_bufs = [m.alloc(bytes(b)) for b in W]
    wa = m.alloc(struct.pack("<11I", *wa_bufs))
    ha = m.alloc(bytes(h))
    sc = m.alloc(SCRATCH)
    _, n, cyc = m.call("rk_layer", pa, wa, ha, len(h), len(W[10]), sc, count=count)
    for buf, addr in list(zip(W, wa_bufs)) + [(h, ha)]:
        raw = m.read(addr, len(bytes(buf)))
        buf[:] = type(buf)(buf.typecode, raw)
    return n, cyc


def model_shapes():
    """Matrices of one step of the bundled home model (skills/home/model.rku): list of (name, R, C)."""
    sys.path.insert(0, str(ROOT / "firmware"))
    from rkfw import rku
    model = rku.load(open(ROOT / "skills" / "home" / "model.rku", "rb").read())
    a = model.arch
    out = []
    for i in range(a["layers"]):
        for n in ("Wr", "Wk", "Wv", "Wo", "Ck", "Cv"):
            t = model.tensor("l%d.%s" % (i, n))
            out.append(("l%d.%s" % (i, n), t.shape[0], t.shape[1]))
    return a, out, {n: tuple(model.tensor(n).shape) for n in ("head", "ptr_k", "ptr_q")}


def measure(opt="-O2"):
    """The Cortex-M0+ figures of docs/results.md: per weight costs at 256x256, code size, home-model step."""
    rng = np.random.default_rng(1)
    img = Image(opt)
    m = M0(img)
    res = {"opt": opt, "gcc": _run([CC, "-dumpversion"]).strip(), "mhz": MHZ}
    W = rng.integers(-1, 2, size=(256, 256))
    x = rng.integers(-127, 128, size=256)
    ref = W @ x
    y, n, cyc = tmv(m, W, x)
    assert (y == ref).all(), "rk_tmv on the emulator differs from numpy"
    y8, n8, cyc8 = tmv_i8(m, W, x)
    assert (y8 == ref).all(), "rk_tmv_i8 on the emulator differs from numpy"
    nw = W.size
    res["tmv_256"] = {"instructions": n, "cycles": cyc, "instr_per_weight": n / nw, "cycles_per_weight": cyc / nw}
    res["i8_256"] = {"instructions": n8, "cycles": cyc8, "instr_per_weight": n8 / nw, "cycles_per_weight": cyc8 / nw}
    res["size"] = core_size(opt)
    # home model step
    arch, mats, extra = model_shapes()
    step_i, step_c, weights = 0, 0, 0
    per = {}
    for name, R, C in mats:
        Wm = rng.integers(-1, 2, size=(R, C))
        xm = rng.integers(-127, 128, size=C)
        y, n_, c_ = tmv(m, Wm, xm)
        assert (y == Wm @ xm).all()
        per[name] = {"R": R, "C": C, "instructions": n_, "cycles": c_}
        step_i += n_
        step_c += c_
        weights += R * C
    d, f = arch["d"], arch["f"]
    h = rng.integers(-(1 << 20), 1 << 20, size=max(d, f))
    _, _, qi, qc = quant(m, "rk_quant_i8", h[:d])
    _, _, qfi, qfc = quant(m, "rk_quant_i8", h[:f])
    # per layer: 3 activation quantizations of d values and one of f (i8 or fp4 by layer; i8 measured)
    q_i = arch["layers"] * (3 * qi + qfi)
    q_c = arch["layers"] * (3 * qc + qfc)
    extra_cost = {}
    for name, (R, C) in extra.items():
        Wm = rng.integers(-1, 2, size=(R, C))
        xm = rng.integers(-127, 128, size=C)
        _, n_, c_ = tmv(m, Wm, xm)
        extra_cost[name] = {"R": R, "C": C, "instructions": n_, "cycles": c_}
    res["home"] = {"arch": {k: arch[k] for k in ("d", "f", "layers", "dk", "max_in")}, "matrices": per,
                   "step_tmv_instructions": step_i, "step_tmv_cycles": step_c, "step_weights": weights,
                   "step_quant_cycles": q_c, "step_quant_instructions": q_i, "extra": extra_cost}
    return res


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1] if len(sys.argv) > 1 else "-O2"), indent=1))
