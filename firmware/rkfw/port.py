# The few things that differ between MicroPython and CPython (the virtual board's CPython runtime).
# Everything else in firmware/ is written once for both.
import sys
import time

MICROPYTHON = sys.implementation.name == "micropython"

if MICROPYTHON:
    from time import ticks_ms, ticks_us, ticks_diff, sleep_ms
else:
    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_us():
        return time.monotonic_ns() // 1000

    def ticks_diff(a, b):
        return a - b

    def sleep_ms(ms):
        time.sleep(ms / 1000)


def runtime():
    v = sys.implementation.version
    return "%s %d.%d.%d" % (sys.implementation.name, v[0], v[1], v[2])


def mem_free():
    try:
        import gc
        return gc.mem_free()
    except AttributeError:
        return -1
