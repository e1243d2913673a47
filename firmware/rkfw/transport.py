# Byte transports the app serves the framed protocol on. Each has read() -> bytes or None (never blocks
# for long on a real board) and write(data). The I2C target transport lives beside these (issue 4).
import sys
from rkfw import proto


class Uart:
    """A hardware UART on the pins of the board profile."""

    def __init__(self, machine, cfg, baud=None):
        self.name = "uart%d" % cfg["id"]
        self.uart = machine.UART(cfg["id"], baudrate=baud or cfg.get("baud", 115200),
                                 tx=machine.Pin(cfg["tx"]), rx=machine.Pin(cfg["rx"]),
                                 rxbuf=2 * proto.MAX_WIRE)
        self.decoder = proto.Decoder()

    def read(self):
        n = self.uart.any()
        if n:
            return self.uart.read(n)
        return None

    def write(self, data):
        self.uart.write(data)


class UsbStdio:
    """USB serial through the REPL's stdin/stdout. A Ctrl-C from the host (0x03) leaves the serve loop
    with KeyboardInterrupt, which brings back the REPL for maintenance (mpremote works as usual)."""

    def __init__(self):
        import select
        self.name = "usb"
        self.poll = select.poll()
        self.poll.register(sys.stdin, select.POLLIN)
        self.stdin = sys.stdin.buffer
        self.stdout = sys.stdout.buffer
        self.decoder = proto.Decoder()
        self.one = bytearray(1)

    def read(self):
        if not self.poll.poll(0):
            return None
        n = self.stdin.readinto(self.one)
        return self.one if n else None

    def write(self, data):
        self.stdout.write(data)
