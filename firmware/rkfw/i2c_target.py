# The I2C target transport (docs/i2c.md), with the interface of rkfw.transport's; in its own module because
# most boards serve UART only and need not hold its code.
import struct
from rkfw import proto
from rkfw import port

# ---- I2C register map (docs/i2c.md) ------------------------------------------------------------------
# The board is an I2C target with 16-bit register addresses (big-endian on the bus, as every I2C
# memory device). Registers and windows are one byte array on the board (machine.I2CTarget mem mode).
I2C_MAP_VERSION = 1
I2C_STATUS = 0x0000         # u8: ST_* bits
I2C_REPLY_ID = 0x0001       # u8: incremented (mod 256) for every reply placed in the reply window
I2C_REPLY_LEN = 0x0002      # u16 LE: bytes of the reply in the reply window (wire frame, 0x00 included)
I2C_CTRL = 0x0004           # u8, written by the controller: CTRL_* command, cleared by the board
I2C_MAP = 0x0005            # u8: I2C_MAP_VERSION
I2C_WINDOW = 0x0006         # u16 LE: size of each window (= proto.MAX_WIRE)
I2C_MAGIC = 0x0008          # 4 bytes "reku"
I2C_REPLY = 0x0010          # reply window (read): one wire frame
I2C_REQUEST = I2C_REPLY + proto.MAX_WIRE      # request window (write): one wire frame, 0x00 delimiter last
I2C_MEM = I2C_REQUEST + proto.MAX_WIRE        # bytes of register space
ST_READY = 0x01             # a reply is waiting (READY pin low while set)
ST_BUSY = 0x02              # a request was taken and is being served
ST_BOOT = 0x04              # set at boot, cleared when the first request is taken: tells of a reset
CTRL_ACK = 0x01             # the controller has read the reply: clear ST_READY and release the READY pin
I2C_FILL = 0xFF             # the empty request window is filled with this (COBS frames carry no 0x00)


class I2c:
    """machine.I2CTarget in memory mode with the register map of docs/i2c.md (the constants above).

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
        mem = self.mem = bytearray(I2C_MEM)
        self.fill = b"\xff" * proto.MAX_WIRE
        mem[I2C_REQUEST:I2C_MEM] = self.fill
        mem[I2C_STATUS] = ST_BOOT
        mem[I2C_MAP] = I2C_MAP_VERSION
        struct.pack_into("<H", mem, I2C_WINDOW, proto.MAX_WIRE)
        mem[I2C_MAGIC:I2C_MAGIC + 4] = b"reku"
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
        mem[I2C_STATUS] = (mem[I2C_STATUS] & ~clear_bits & 0xFF) | set_bits

    def read(self):
        if not self.written:
            return None
        self.written = False
        mem = self.mem
        ctrl = mem[I2C_CTRL]
        if ctrl:
            mem[I2C_CTRL] = 0
            if ctrl & CTRL_ACK:
                self._status(0, ST_READY)
                if self.ready is not None:
                    self.ready.value(1)
        end = mem.find(b"\x00", I2C_REQUEST, I2C_MEM)
        if end < 0:
            if mem[I2C_MEM - 1] == I2C_FILL:
                return None             # part of a frame so far (a controller writing in pieces)
            end = I2C_MEM - 1     # the window is full and has no delimiter: hand it on, it errs
            data = mem[I2C_REQUEST:I2C_MEM] + b"\x00"
        else:
            data = mem[I2C_REQUEST:end + 1]
        mem[I2C_REQUEST:I2C_MEM] = self.fill
        self._status(ST_BUSY, ST_READY | ST_BOOT)
        if self.ready is not None:
            self.ready.value(1)
        return data

    def write(self, data):
        mem = self.mem
        n = len(data)
        mem[I2C_REPLY:I2C_REPLY + n] = data
        struct.pack_into("<H", mem, I2C_REPLY_LEN, n)
        mem[I2C_REPLY_ID] = (mem[I2C_REPLY_ID] + 1) & 0xFF
        self._status(ST_READY, ST_BUSY)      # last: the controller reads STATUS first
        if self.ready is not None:
            self.ready.value(0)

    def served(self):
        self._status(0, ST_BUSY)     # a request that got no reply (e.g. an empty frame)

    def working(self):
        self._status(ST_BUSY, 0)     # an E_BUSY reply went out; the request before it is still served

    def flush(self, timeout_ms=1000):
        """Before a reset: give the controller time to read the reply (it writes CTRL_ACK when done)."""
        t0 = port.ticks_ms()
        while self.mem[I2C_STATUS] & ST_READY and port.ticks_diff(port.ticks_ms(), t0) < timeout_ms:
            if self.written:
                self.read()
            else:
                self.machine.idle()
