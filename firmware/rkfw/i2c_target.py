# The I2C target transport (docs/i2c.md), with the interface of rkfw.transport's; in its own module because
# most boards serve UART only and need not hold its code.
import struct
from rkfw import proto
from rkfw import port


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
