"""The I2C controller side of the protocol: the register map of docs/i2c.md over a bus.

A bus has `write(data)` (one write transaction to the board's address: START, addr+W, data, STOP) and
`read(n)` (one read transaction of n bytes). Two buses exist and the register code above them is the
same for both:

- LinuxBus: /dev/i2c-N through the kernel's i2c-dev (ioctl I2C_SLAVE, then read()/write()), e.g. on a
  Raspberry Pi; no dependency beyond the standard library.
- SimBus: the virtual board's I2C wire (a pty carrying one COBS frame per transaction; see
  reku/sim/hal/machine.py), so that this module's code path is what the tests exercise.
"""

import os
import struct
import time

from rkfw import i2c_target, proto

from .errors import RekuError

I2C_SLAVE = 0x0703          # linux/i2c-dev.h
I2C_SLAVE_FORCE = 0x0706


class BusError(RekuError):
    """A bus transaction failed (no device at the address, bus stuck, adapter gone)."""


class LinuxBus:
    """/dev/i2c-N with the board's 7-bit address selected."""

    def __init__(self, bus, address, force=False):
        import fcntl
        self.path = bus if isinstance(bus, str) else "/dev/i2c-%d" % bus
        self.address = address
        try:
            self.fd = os.open(self.path, os.O_RDWR)
        except OSError as e:
            raise BusError("cannot open %s: %s (is i2c-dev loaded and I2C enabled?)" % (self.path, e.strerror))
        try:
            fcntl.ioctl(self.fd, I2C_SLAVE_FORCE if force else I2C_SLAVE, address)
        except OSError as e:
            os.close(self.fd)
            raise BusError("cannot select address 0x%02x on %s: %s" % (address, self.path, e.strerror))
        self.name = "%s@0x%02x" % (self.path, address)

    def write(self, data):
        try:
            n = os.write(self.fd, data)
        except OSError as e:
            raise BusError("write to 0x%02x on %s failed: %s" % (self.address, self.path, e.strerror))
        if n != len(data):
            raise BusError("short write to 0x%02x on %s (%d of %d bytes)" % (self.address, self.path, n, len(data)))

    def read(self, n):
        try:
            data = os.read(self.fd, n)
        except OSError as e:
            raise BusError("read from 0x%02x on %s failed: %s" % (self.address, self.path, e.strerror))
        if len(data) != n:
            raise BusError("short read from 0x%02x on %s" % (self.address, self.path))
        return data

    def close(self):
        os.close(self.fd)


class SimBus:
    """The virtual board's I2C bus, carried over its pty (one COBS frame per bus transaction)."""

    def __init__(self, path, address, timeout=60.0):
        import tty
        self.path = path
        self.address = address
        self.timeout = timeout
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        except OSError as e:
            raise BusError("cannot open the virtual I2C bus %s: %s" % (path, e.strerror))
        try:
            tty.setraw(self.fd)
        except Exception:
            pass
        self.name = "sim:%s@0x%02x" % (path, address)
        self.buf = bytearray()

    def _transact(self, frame):
        os.write(self.fd, proto.cobs_encode(frame) + b"\x00")
        deadline = time.monotonic() + self.timeout
        import select
        while True:
            i = self.buf.find(0)
            if i >= 0:
                reply = bytes(proto.cobs_decode(bytes(self.buf[:i])))
                del self.buf[:i + 1]
                if not reply:
                    continue
                return reply
            left = deadline - time.monotonic()
            if left <= 0:
                raise BusError("the virtual board did not complete a bus transaction in %.0f s" % self.timeout)
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                self.buf += os.read(self.fd, 4096)

    def _check(self, reply):
        if reply[0] == 1:
            raise BusError("no device answers at 0x%02x on %s (NACK)" % (self.address, self.path))
        if reply[0] != 0:
            raise BusError("bad bus transaction on %s" % self.path)
        return reply[1:]

    def write(self, data):
        self._check(self._transact(b"W" + bytes([self.address]) + bytes(data)))

    def read(self, n):
        data = self._check(self._transact(b"R" + bytes([self.address]) + struct.pack("<H", n)))
        if len(data) != n:
            raise BusError("short read on %s" % self.path)
        return data

    def pin(self, number):
        """Level of a GPIO of the virtual board (its READY line)."""
        return self._check(self._transact(b"P" + bytes([number])))[0]

    def close(self):
        os.close(self.fd)


class SysfsPin:
    """A GPIO input through /sys/class/gpio/gpioN/value (exported beforehand, direction in)."""

    def __init__(self, number):
        self.path = "/sys/class/gpio/gpio%d/value" % number
        if not os.path.exists(self.path):
            raise RekuError("READY pin: %s does not exist (export it: echo %d > /sys/class/gpio/export)"
                            % (self.path, number))

    def __call__(self):
        with open(self.path, "rb") as f:
            return 0 if f.read(1) == b"0" else 1


class I2CLink:
    """A link for reku.client.Client over the register map: frames go into the request window, replies
    come from the reply window once STATUS says READY (or the READY pin is low)."""

    prefix = b""                    # each request has the window to itself: no leading 0x00 needed

    def __init__(self, bus, ready=None, max_write=None, max_read=None, poll_s=0.0005, max_poll_s=0.005):
        self.bus = bus
        self.name = bus.name
        self.ready = ready          # callable -> pin level (0 = a reply is waiting), or None: poll STATUS
        self.max_write = max_write or (2 + proto.MAX_WIRE)    # bytes per write transaction, address included
        self.max_read = max_read or proto.MAX_WIRE
        self.poll_s = poll_s
        self.max_poll_s = max_poll_s
        self.last_id = None
        self.bytes_out = 0          # bus payload bytes (register addresses included), for the benchmarks
        self.bytes_in = 0
        self.transactions = 0
        st, rid, _n = self.status()
        if self.regs(i2c_target.I2C_MAGIC, 4) != b"reku":
            raise BusError("the device at %s is not a reku board (no 'reku' at register 0x%04x)"
                           % (self.name, i2c_target.I2C_MAGIC))
        if st & i2c_target.ST_READY:
            self.last_id = rid      # a reply nobody collected: not ours

    # ---- registers -------------------------------------------------------------------------------------
    def _write(self, data):
        self.bytes_out += len(data)
        self.transactions += 1
        self.bus.write(data)

    def regs(self, reg, n):
        """n bytes from register `reg` (an address-only write, then a read)."""
        self._write(struct.pack(">H", reg))
        self.bytes_in += n
        self.transactions += 1
        return self.bus.read(n)

    def status(self):
        st, rid, n = struct.unpack("<BBH", self.regs(i2c_target.I2C_STATUS, 4))
        return st, rid, n

    def control(self, cmd):
        self._write(struct.pack(">HB", i2c_target.I2C_CTRL, cmd))

    # ---- link interface ------------------------------------------------------------------------------
    def write(self, frame):
        step = self.max_write - 2
        for off in range(0, len(frame), step):
            self._write(struct.pack(">H", i2c_target.I2C_REQUEST + off) + frame[off:off + step])

    def read(self, timeout):
        """One reply frame, or b"" when none came within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        wait = self.poll_s
        while True:
            if self.ready is None or self.ready() == 0:
                st, rid, n = self.status()
                if st & i2c_target.ST_BOOT:
                    self.last_id = None             # the board restarted: its reply counter did too
                    # (ST_BOOT lasts until the board takes a request, so it never comes with ST_READY)
                if st & i2c_target.ST_READY and rid != self.last_id and 0 < n <= proto.MAX_WIRE:
                    data = bytearray()
                    while len(data) < n:
                        k = min(self.max_read, n - len(data))
                        data += self.regs(i2c_target.I2C_REPLY + len(data), k)
                    self.last_id = rid
                    self.control(i2c_target.CTRL_ACK)
                    return bytes(data)
            left = deadline - time.monotonic()
            if left <= 0:
                return b""
            time.sleep(min(wait, left))
            wait = min(wait * 2, self.max_poll_s)

    def after_reset(self, timeout=30.0):
        """Wait until the board is back after a reset (it does not answer its address while booting;
        it sets ST_BOOT once it serves again)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.status()[0] & i2c_target.ST_BOOT:
                    self.last_id = None
                    return True
            except BusError:
                pass
            time.sleep(0.05)
        return False

    def close(self):
        self.bus.close()


def parse_target(spec):
    """`BUS:ADDR` -> (bus, address). BUS: a number N (/dev/i2c-N), a device path, or sim:PTY for the
    virtual board's bus. ADDR: decimal or 0x hex, 7-bit."""
    bus, sep, addr = spec.rpartition(":")
    if not sep or not bus:
        raise RekuError("--i2c wants BUS:ADDR (e.g. 1:0x42, /dev/i2c-1:0x42 or sim:/dev/pts/3:0x42), got %r" % spec)
    try:
        address = int(addr, 0)
    except ValueError:
        raise RekuError("I2C address %r is not a number (e.g. 0x42 or 66)" % addr) from None
    if not 0x08 <= address <= 0x77:
        raise RekuError("I2C address 0x%02x is outside the 7-bit range 0x08..0x77" % address)
    if bus.isdigit():
        bus = int(bus)
    return bus, address


def open_bus(bus, address):
    if isinstance(bus, str) and bus.startswith("sim:"):
        return SimBus(bus[4:], address)
    return LinuxBus(bus, address)
