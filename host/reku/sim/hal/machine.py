# The virtual board's `machine` module: the hardware the firmware sees when it runs in `reku sim`.
# Valid on MicroPython (WebAssembly build, where the JS module `simio` moves the wire's bytes) and on
# CPython (where the wire is the pty master file descriptor named by REKU_SIM_UART_FD).
#
# The pty is one wire: the UART (bytes as they are) or, when the firmware opens an I2CTarget, the I2C bus.
# On the bus wire each bus transaction is one COBS frame (0x00 last), see I2CTarget below and
# reku.i2c.SimBus (the host side).
import sys

_MP = sys.implementation.name == "micropython"

if _MP:
    import binascii
    import simio

    def _wire_read(n):
        return binascii.unhexlify(simio.read(n))    # blocks until at least one byte arrives

    def _wire_write(data):
        simio.write(binascii.hexlify(data).decode())

    def _wire_avail():
        return simio.avail()                        # bytes waiting, without blocking
else:
    import os
    import time as _time
    _FD = int(os.environ["REKU_SIM_UART_FD"])
    _BOARD_DIR = os.getcwd()        # the runner has changed into the board directory

    def _wire_read(n):
        return os.read(_FD, n)

    def _wire_write(data):
        view = memoryview(data)
        while view:
            view = view[os.write(_FD, view):]

    def _wire_avail():
        import select
        return 4096 if select.select([_FD], [], [], 0)[0] else 0

# Kept for code that used the old names.
_uart_read = _wire_read
_uart_write = _wire_write


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    _all = {}                       # id -> the last Pin made for it (the bus wire can read its level)

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self._v = 1 if value is None else value
        Pin._all[id] = self

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = 1 if v else 0

    def on(self):
        self._v = 1

    def off(self):
        self._v = 0

    def __call__(self, v=None):
        return self.value(v)


class UART:
    """A UART whose wire is the pty the simulator printed. any() says whether bytes are waiting (on CPython
    4096 when some are: read() returns what is there), without blocking; read() blocks until one arrives."""

    def __init__(self, id, baudrate=115200, tx=None, rx=None, **kw):
        self.id = id
        self.baudrate = baudrate

    def any(self):
        return _wire_avail()

    def read(self, n=256):
        return _wire_read(n)

    def write(self, data):
        _wire_write(data)
        return len(data)

    def flush(self):
        pass


# ---- I2C target ----------------------------------------------------------------------------------------
# Bus wire, host -> board, one COBS frame per transaction:
#   b"W" addr7 data...      START, addr+W, data bytes (register address first), STOP
#   b"R" addr7 n(u16 LE)    START, addr+R, n bytes read, STOP
#   b"P" pin                level of a GPIO (the READY line), no bus traffic
# board -> host, one COBS frame per request: status u8 (0 ACK, 1 NACK: no target at addr7, 2 bad
# request) followed by the bytes read (R) or the level (P).
# The memory-mode semantics are those of MicroPython's extmod/machine_i2c_target.c: the first
# mem_addrsize/8 bytes of a write set the address (big-endian, modulo len(mem)), the rest is stored
# with auto-increment and wrap-around; reads continue from the current address; IRQ_END_WRITE is not
# raised for a write that only sets the address.

_targets = {}           # addr7 -> I2CTarget
_bus = None


class _BusWire:
    """Reads bus transactions from the wire and plays them on the targets."""

    def __init__(self):
        self.buf = bytearray()
        self.thread = None

    def feed(self, data):
        for b in data:
            if b:
                self.buf.append(b)
            elif self.buf:
                # The bus wire is framed with the firmware's own COBS (imported here, not at module load:
                # a bare board in REPL mode has no rkfw yet and still imports machine).
                from rkfw import proto
                try:
                    reply = self.transact(proto.cobs_decode(self.buf))
                except proto.ProtocolError:
                    reply = b"\x02"
                self.buf = bytearray()
                _wire_write(proto.cobs_encode(reply) + b"\x00")

    def transact(self, f):
        if len(f) < 2:
            return b"\x02"
        op = f[0]
        if op == 0x50:                                          # P
            p = Pin._all.get(f[1])
            return bytes([0, 1 if p is None else p.value()])
        t = _targets.get(f[1])
        if t is None:
            return b"\x01"
        if op == 0x57:                                          # W
            t._write(f[2:])
            return b"\x00"
        if op == 0x52 and len(f) >= 4:                          # R
            return b"\x00" + t._read(f[2] | f[3] << 8)
        return b"\x02"

    def serve_once(self):
        """Block until at least one byte comes, then serve every complete transaction (MicroPython)."""
        self.feed(_wire_read(4096))
        while self.buf:                     # a transaction cut in two reads: finish it
            self.feed(_wire_read(4096))

    def serve_forever(self):
        import select
        self.stopping = False
        while not (self.stopping and not self.buf):     # CPython: a thread, like the peripheral's IRQ
            r, _w, _x = select.select([_FD], [], [], 0.02)
            if not r:
                continue
            try:
                data = _wire_read(4096)
            except OSError:
                _time.sleep(0.01)
                continue
            self.feed(data)

    def stop(self):
        """Stop reading the wire between transactions (before a reset: what is unread stays for the
        next boot, as a bus transaction during a reset would be retried)."""
        self.stopping = True
        if self.thread is not None:
            self.thread.join(2)


class _Irq:
    def __init__(self):
        self._flags = 0

    def flags(self):
        return self._flags


class I2CTarget:
    IRQ_ADDR_MATCH_READ = 1
    IRQ_ADDR_MATCH_WRITE = 2
    IRQ_READ_REQ = 4
    IRQ_WRITE_REQ = 8
    IRQ_END_READ = 16
    IRQ_END_WRITE = 32
    _HARD_ONLY = 15

    def __init__(self, id, addr, *, addrsize=7, mem=None, mem_addrsize=8, scl=None, sda=None):
        global _bus
        if mem is None:
            raise ValueError("the simulated I2CTarget supports memory mode only")
        if mem_addrsize not in (0, 8, 16, 24, 32):
            raise ValueError("mem_addrsize must be 0, 8, 16, 24 or 32")
        self.id = id
        self.addr = addr
        self.mem = mem
        self.mem_addrsize = mem_addrsize
        self.memaddr = 0            # the address most recently selected by the controller
        self._ptr = 0
        self._handler = None
        self._trigger = 0
        self._irq = _Irq()
        _targets[addr] = self
        if _bus is None:
            _bus = _BusWire()
            if not _MP:
                import threading
                _bus.thread = threading.Thread(target=_bus.serve_forever, daemon=True)
                _bus.thread.start()

    def deinit(self):
        _targets.pop(self.addr, None)

    def irq(self, handler=None, trigger=IRQ_END_READ | IRQ_END_WRITE, hard=False):
        if handler is not None:
            if trigger & self._HARD_ONLY and not hard:
                raise ValueError("hard IRQ required")
            self._handler = handler
            self._trigger = trigger
        return self._irq

    def _event(self, ev):
        if self._handler is not None and self._trigger & ev:
            self._irq._flags = ev
            self._handler(self)

    def _write(self, data):
        mem = self.mem
        n = len(mem)
        left = self.mem_addrsize // 8
        selecting = True
        wrote = not data            # an empty write ends as a write; an address-only write does not
        addr = 0
        for b in data:
            if selecting and left:
                addr = (addr << 8) | b
                left -= 1
                if left == 0:
                    addr %= n
                    self.memaddr = addr
                continue
            selecting = False
            wrote = True
            mem[addr] = b
            addr += 1
            if addr >= n:
                addr = 0
        self._ptr = addr
        if wrote:
            self._event(self.IRQ_END_WRITE)

    def _read(self, count):
        mem = self.mem
        n = len(mem)
        out = bytearray(count)
        p = self._ptr
        for i in range(count):
            out[i] = mem[p]
            p += 1
            if p >= n:
                p = 0
        self._ptr = p
        self._event(self.IRQ_END_READ)
        return bytes(out)


def _now_ms():
    if _MP:
        import time
        return time.ticks_ms()
    return int(_time.monotonic() * 1000)


class WDT:
    """The watchdog: a real board resets when it is not fed within `timeout` ms. The virtual board does not
    reset; it says on its console (stdout) that a real board would have, so that tests catch it."""

    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.last = _now_ms()
        self.feeds = 0

    def feed(self):
        now = _now_ms()
        gap = (now - self.last) & 0x3FFFFFFF if _MP else now - self.last
        if gap > self.timeout:
            print("sim: watchdog: %d ms without a feed (timeout %d ms): a real board would reset here"
                  % (gap, self.timeout))
        self.last = now
        self.feeds += 1


def idle():
    """Wait for the next event. On MicroPython (one thread) the I2C bus is served here, as the
    peripheral's interrupt would; on CPython a thread serves it and this only sleeps a millisecond."""
    if _MP:
        if _bus is not None:
            _bus.serve_once()
        else:
            simio.idle()
    else:
        _time.sleep(0.001)


def freq():
    return 133000000


def unique_id():
    return b"reku-sim"


def reset():
    """A hard reset: the CPython board starts its process again (same wire, same files); the MicroPython
    board raises SystemExit, on which the Node runner boots a fresh interpreter on the same files."""
    if not _MP:
        if _bus is not None:
            _bus.stop()
        sys.stdout.flush()
        argv = [sys.executable, "-I", "-S", "-u", sys.argv[0], _BOARD_DIR, sys.argv[2]]
        os.execv(sys.executable, argv)
    raise SystemExit("machine.reset()")
