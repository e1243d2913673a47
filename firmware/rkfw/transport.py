# Byte transports the app serves the framed protocol on. Each has
#   read() -> bytes or None   (never blocks for long on a real board)
#   write(frame)              (one reply frame)
#   served()                  (called after the frames of one read() were handled)
#   flush()                   (make sure the last reply left the board, before a reset)
#   working()                 (an out-of-band reply (E_BUSY) was written while a request is still served)
# and a `decoder` (proto.Decoder) and `last` (the duplicate cache, see App.handle).
import sys
import struct
from rkfw import proto
from rkfw import port


class Uart:
    """A hardware UART on the pins of the board profile."""

    def __init__(self, machine, cfg, baud=None):
        self.name = "uart%d" % cfg["id"]
        self.uart = machine.UART(cfg["id"], baudrate=baud or cfg.get("baud", 115200),
                                 tx=machine.Pin(cfg["tx"]), rx=machine.Pin(cfg["rx"]),
                                 rxbuf=2 * proto.MAX_WIRE)
        self.decoder = proto.Decoder()
        self.last = None

    def read(self):
        n = self.uart.any()
        if n:
            return self.uart.read(n)
        return None

    def write(self, data):
        self.uart.write(data)

    def served(self):
        pass

    def working(self):
        pass

    def flush(self):
        f = getattr(self.uart, "flush", None)     # waits until the TX FIFO is empty (rp2, esp32)
        if f is not None:
            f()
        port.sleep_ms(5)


class UsbStdio:
    """USB serial through the REPL's stdin/stdout. MicroPython's Ctrl-C interrupt is switched off while
    serving (frames carry 0x03 bytes: the QUERY type is 0x03); instead "\r\x03" (what mpremote sends) or
    "\x03\x03" (Ctrl-C twice in a terminal) between frames raises KeyboardInterrupt, which leaves the serve
    loop and brings back the REPL for maintenance. No frame can start that way: a frame's second byte is
    its version, 0x01."""

    def __init__(self, stdin=None, stdout=None):
        import select
        self.name = "usb"
        stdin = stdin or sys.stdin
        self.poll = select.poll()
        self.poll.register(stdin, select.POLLIN)
        self.ipoll = getattr(self.poll, "ipoll", None)     # MicroPython: polls without allocating a list
        self.stdin = getattr(stdin, "buffer", stdin)
        self.stdout = stdout or sys.stdout.buffer
        self.decoder = proto.Decoder()
        self.one = bytearray(1)
        self.last = None
        self._kbd(-1)

    def _kbd(self, ch):
        try:
            import micropython
            micropython.kbd_intr(ch)
        except (ImportError, AttributeError):
            pass

    def _waiting(self):
        if self.ipoll is None:
            return bool(self.poll.poll(0))
        for _ev in self.ipoll(0):
            return True
        return False

    def read(self):
        if not self._waiting():
            return None
        n = self.stdin.readinto(self.one)
        if not n:
            return None
        d = self.decoder
        if self.one[0] == 3 and d.n == 1 and d.buf[0] in (3, 13):
            d.reset()
            self._kbd(3)
            raise KeyboardInterrupt
        return self.one

    def write(self, data):
        self.stdout.write(data)

    def served(self):
        pass

    def working(self):
        pass

    def flush(self):
        port.sleep_ms(20)


class I2c:
    """machine.I2CTarget in memory mode with the register map of docs/i2c.md (constants in proto).

    The controller writes a request frame (COBS, 0x00 last) into the request window, in one write or in
    several at increasing addresses; the board takes it when the window holds a 0x00, refills the window
    with 0xFF and sets ST_BUSY. The reply goes into the reply window with its length in REPLY_LEN; then
    REPLY_ID is incremented and ST_READY set, and the READY pin (open drain, active low) pulled low until
    the controller writes CTRL_ACK or the next request arrives. Only IRQ_END_WRITE is used, as a soft IRQ:
    that is what every port with I2CTarget offers (rp2 hard or soft, esp32-s2/s3/c3/c6 soft only)."""

    def __init__(self, machine, cfg, address=None, ready_pin=None):
        self.machine = machine
        self.address = address or cfg.get("address", 0x42)
        self.name = "i2c%d@0x%02x" % (cfg["id"], self.address)
        mem = self.mem = bytearray(proto.I2C_MEM)
        self.fill = b"\xff" * proto.MAX_WIRE
        mem[proto.I2C_REQUEST:proto.I2C_MEM] = self.fill
        mem[proto.I2C_STATUS] = proto.ST_BOOT
        mem[proto.I2C_MAP] = proto.I2C_MAP_VERSION
        struct.pack_into("<H", mem, proto.I2C_WINDOW, proto.MAX_WIRE)
        mem[proto.I2C_MAGIC:proto.I2C_MAGIC + 4] = b"reku"
        self.written = False
        self.ready = None
        if ready_pin is not None:
            self.ready = machine.Pin(ready_pin, machine.Pin.OPEN_DRAIN, value=1)
        T = machine.I2CTarget
        self.target = T(cfg["id"], self.address, mem=mem, mem_addrsize=16,
                        scl=machine.Pin(cfg["scl"]), sda=machine.Pin(cfg["sda"]))
        self.target.irq(self._irq, T.IRQ_END_WRITE, False)
        self.decoder = proto.Decoder()
        self.last = None

    def _irq(self, target):
        self.written = True

    def _status(self, set_bits, clear_bits):
        mem = self.mem
        mem[proto.I2C_STATUS] = (mem[proto.I2C_STATUS] & ~clear_bits & 0xFF) | set_bits

    def read(self):
        if not self.written:
            return None
        self.written = False
        mem = self.mem
        ctrl = mem[proto.I2C_CTRL]
        if ctrl:
            mem[proto.I2C_CTRL] = 0
            if ctrl & proto.CTRL_ACK:
                self._status(0, proto.ST_READY)
                if self.ready is not None:
                    self.ready.value(1)
        end = mem.find(b"\x00", proto.I2C_REQUEST, proto.I2C_MEM)
        if end < 0:
            if mem[proto.I2C_MEM - 1] == proto.I2C_FILL:
                return None             # part of a frame so far (a controller writing in pieces)
            end = proto.I2C_MEM - 1     # the window is full and has no delimiter: hand it on, it errs
            data = mem[proto.I2C_REQUEST:proto.I2C_MEM] + b"\x00"
        else:
            data = mem[proto.I2C_REQUEST:end + 1]
        mem[proto.I2C_REQUEST:proto.I2C_MEM] = self.fill
        self._status(proto.ST_BUSY, proto.ST_READY | proto.ST_BOOT)
        if self.ready is not None:
            self.ready.value(1)
        return data

    def write(self, data):
        mem = self.mem
        n = len(data)
        mem[proto.I2C_REPLY:proto.I2C_REPLY + n] = data
        struct.pack_into("<H", mem, proto.I2C_REPLY_LEN, n)
        mem[proto.I2C_REPLY_ID] = (mem[proto.I2C_REPLY_ID] + 1) & 0xFF
        self._status(proto.ST_READY, proto.ST_BUSY)      # last: the controller reads STATUS first
        if self.ready is not None:
            self.ready.value(0)

    def served(self):
        self._status(0, proto.ST_BUSY)     # a request that got no reply (e.g. an empty frame)

    def working(self):
        self._status(proto.ST_BUSY, 0)     # an E_BUSY reply went out; the request before it is still served

    def flush(self, timeout_ms=1000):
        """Before a reset: give the controller time to read the reply (it writes CTRL_ACK when done)."""
        t0 = port.ticks_ms()
        while self.mem[proto.I2C_STATUS] & proto.ST_READY and port.ticks_diff(port.ticks_ms(), t0) < timeout_ms:
            if self.written:
                self.read()
            else:
                self.machine.idle()
