# Heap of the firmware during queries, measured by MicroPython itself (benchmarks/bench_board.py runs it).
# Runs on any MicroPython with the firmware importable and, in the current directory, model.rku, board.json and
# queries.json: a board or qemu-emulated board through `mpremote mount` (bench_board.py --heap-on PORT), or the
# WebAssembly build (bench_board's node runner). The boot goes in STEPS; after each, gc.mem_alloc() after a
# collection. Per query, what App.handle(QUERY) allocates with the collector off (nothing freed): resident + that
# bounds the peak from above. Prints one line "RESULT {json}".
#
# On a board, run() does it all in one program. The WebAssembly build (1.29, GC_SPLIT_HEAP_AUTO) cannot collect
# while Python code runs: gc.collect() there only asks for a collection, made when control returns to JavaScript
# (ports/webassembly/main.c, gc_collect_top_level). So its runner calls step(i), returns, then mark(i) and
# finish() as separate top-level calls; one program there would count every byte ever allocated.
import gc
import json
import time

R = {}
S = {}


def _model():
    # A firmware with a ROMFS image compiled in (reku firmware build --board qemu --romfs-kb N): mount it at /rom
    try:
        import rkrom
        import vfs
        if rkrom.image() is not None:
            vfs.mount(vfs.VfsRom(rkrom.image()), '/rom')
    except ImportError:
        pass
    try:
        f = open('/rom/model.rku', 'rb')    # in ROMFS: mapped in place, as rkfw.app._map_model does
        S["buf"] = memoryview(f)
        R["model_path"] = '/rom/model.rku'
        return
    except OSError:
        pass
    f = open('model.rku', 'rb')             # first, as firmware/main.py does: one block while the heap is empty
    S["buf"] = f.read()
    f.close()
    R["model_path"] = 'model.rku'


def _native():
    try:
        import rkernel                      # the native module, where there is one (a natmod lives on the heap)
        S["native"] = rkernel
    except ImportError:
        pass


def _firmware():
    from rkfw import app, proto, status, transport
    S["app"] = app


def _app():
    from rkfw import boot
    app = S["app"]
    S["a"] = app.App(boot.read_profile(), {})
    app.drop("boot")


def _inference():
    from rkfw import infer, kernels, rku
    R["tier"] = kernels.TIER


def _parse():
    from rkfw import rku
    S["m"] = rku.load(S["buf"])


def _engine():
    from rkfw import infer
    S["e"] = infer.Engine(S["m"])


def _attach():
    a = S["a"]
    a.model, a.engine, a.model_path, a.model_error = S.pop("m"), S.pop("e"), "model.rku", None
    R["model_error"] = a.model_error
    del S["buf"]


class _RAMBlocks:
    """A block device in RAM (MicroPython's extended block protocol) for a LittleFS: a board's flash, for a device
    whose files otherwise come over `mpremote mount` (each read of a mounted file allocates on the device)."""

    def __init__(self, size, n):
        self.size = size
        self.data = bytearray(size * n)
        self.mv = memoryview(self.data)
        self.fast = False

    def readblocks(self, b, buf, off=0):
        a = b * self.size + off
        if self.fast:                           # a copy in C, as from a board's memory-mapped flash: for timing
            buf[:] = self.mv[a:a + len(buf)]    # (the slice is a small allocation the flash does not make)
            return
        d = self.data                           # byte by byte, allocating nothing: for the heap figures
        for i in range(len(buf)):
            buf[i] = d[a + i]

    def writeblocks(self, b, buf, off=0):
        a = b * self.size + (off or 0)
        d = self.data
        for i in range(len(buf)):
            d[a + i] = buf[i]

    def ioctl(self, op, arg):
        if op == 4:
            return len(self.data) // self.size
        if op == 5:
            return self.size
        return 0


def flash_memory():
    """Before start(): where the device has LittleFS and no filesystem of its own (the qemu port mounted through
    mpremote), memory.rkm goes onto a LittleFS in RAM, read from there as from a board's flash (the block device is
    allocated before the start, so it is in no stage)."""
    import os
    import sys
    try:
        import vfs
        os.stat("memory.rkm")
        vfs.VfsLfs2
    except (ImportError, OSError, AttributeError):
        return
    if sys.platform == "webassembly":
        return
    bd = _RAMBlocks(4096, 8)                    # the rp2 port's flash filesystem: 4 KB blocks, progsize 256
    vfs.VfsLfs2.mkfs(bd, progsize=256)
    vfs.mount(vfs.VfsLfs2(bd, progsize=256), "/flash")
    with open("memory.rkm", "rb") as src, open("/flash/memory.rkm", "wb") as dst:
        dst.write(src.read())
    S["flash"] = bd
    R["memory_fs"] = "LittleFS in RAM (4 KB blocks, progsize 256, as rp2)"


def _memory():
    # what the board learnt from corrections (memory.rkm beside the model, made for it): as App.load_model does
    import os
    try:
        os.stat("memory.rkm")
    except OSError:
        return
    a = S["a"]
    if "flash" in S:
        from rkfw import app
        app.MEMORY_FILE = "/flash/memory.rkm"       # rkfw.teach, imported by load_memory, reads it from there
    a.load_memory()
    S["memory"] = a.engine.memory
    R["memory_records"] = a.engine.memory.records


STEPS = ((_model, "model file read into RAM (or mapped from /rom)"),
         (_native, "native module rkernel imported"),
         (_firmware, "firmware code imported (rkfw.app, proto, port, status, transport)"),
         (_app, "App constructed (profile, config, buffers)"),
         (_inference, "inference code imported (rkfw.rku, infer, kernels)"),
         (_parse, "model parsed (rku.load)"),
         (_engine, "engine built (state, buffers, grammar)"),
         (_attach, "resident (model attached to the App)"),
         (_memory, "memory of corrections loaded (rkfw.memory)"))
NSTEPS = len(STEPS)


def start():
    gc.collect()
    R["start"] = gc.mem_alloc()
    R["stages"] = []


def step(i):
    if "error" in R:
        return False
    try:
        STEPS[i][0]()
        return True
    except MemoryError as e:
        R["error"] = "MemoryError: %s" % e
        return False


def mark(i):
    gc.collect()
    if "error" in R or i == 1 and "native" not in S or STEPS[i][0] is _memory and "memory" not in S:
        return                              # no native module, no memory: no stage
    R["stages"].append([STEPS[i][1], gc.mem_alloc()])


def finish():
    """The queries (each with the collector off) and the RESULT line."""
    if "error" not in R:
        R["resident"] = R["stages"][-1][1]
        from rkfw import proto
        a = S["a"]
        qs = json.load(open('queries.json'))
        ok = 0
        per = []
        us = []
        try:
            for i in range(len(qs)):
                payload = qs[i].encode()
                gc.collect()
                gc.disable()
                a0 = gc.mem_alloc()
                reply = a.handle((proto.QUERY, i + 1, payload))
                per.append(gc.mem_alloc() - a0)
                gc.enable()
                # the time of the same query, apart (a memory on the RAM LittleFS read at C speed there)
                if "flash" in S:
                    S["flash"].fast = True
                gc.collect()
                t0 = time.ticks_us()
                a.handle((proto.QUERY, 1000 + i, payload))
                us.append(time.ticks_diff(time.ticks_us(), t0))
                if "flash" in S:
                    S["flash"].fast = False
                ev = proto.Decoder().feed(reply)
                if ev and isinstance(ev[0], tuple) and ev[0][0] == proto.QUERY | proto.REPLY:
                    ok += 1
        except MemoryError as e:
            gc.enable()
            R["error"] = "MemoryError: %s" % e
        R["answered"] = ok
        R["query_alloc"] = per
        R["query_us"] = us
    print("RESULT " + json.dumps(R))


def run():
    flash_memory()
    start()
    for i in range(len(STEPS)):
        if not step(i):
            break
        mark(i)
    finish()
