# The virtual board's `machine` module: the hardware the firmware sees when it runs in `reku sim`.
# Valid on MicroPython (WebAssembly build, where the JS module `simio` moves the UART bytes) and on
# CPython (where the UART is the pty master file descriptor named by REKU_SIM_UART_FD).
import sys

_MP = sys.implementation.name == "micropython"

if _MP:
    import binascii
    import simio

    def _uart_read(n):
        return binascii.unhexlify(simio.read(n))    # blocks until at least one byte arrives

    def _uart_write(data):
        simio.write(binascii.hexlify(data).decode())
else:
    import os
    _FD = int(os.environ["REKU_SIM_UART_FD"])

    def _uart_read(n):
        return os.read(_FD, n)

    def _uart_write(data):
        view = memoryview(data)
        while view:
            view = view[os.write(_FD, view):]


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self._v = 1 if value is None else value

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = 1 if v else 0

    def on(self):
        self._v = 1

    def off(self):
        self._v = 0


class UART:
    """A UART whose wire is the pty the simulator printed. read() blocks until a byte arrives, like a
    board that has nothing else to do; any() therefore always invites a read."""

    def __init__(self, id, baudrate=115200, tx=None, rx=None, **kw):
        self.id = id
        self.baudrate = baudrate

    def any(self):
        return 1

    def read(self, n=256):
        return _uart_read(n)

    def write(self, data):
        _uart_write(data)
        return len(data)


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout

    def feed(self):
        pass


def freq():
    return 133000000


def unique_id():
    return b"reku-sim"


def reset():
    raise SystemExit("machine.reset()")
