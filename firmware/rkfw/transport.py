# Byte transports the app serves the framed protocol on. Each has
#   read() -> bytes or None   (never blocks for long on a real board)
#   write(frame)              (one reply frame)
#   served()                  (called after the frames of one read() were handled)
#   flush()                   (make sure the last reply left the board, before a reset)
#   working()                 (an out-of-band reply (E_BUSY) was written while a request is still served)
# and a `decoder` (proto.Decoder) and `last` (the duplicate cache, see App.handle). The I2C target is in
# rkfw.i2c_target, imported only by a board configured for it.
import sys
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
