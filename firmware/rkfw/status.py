# Watchdog and status LED of the co-processor. The serve loop calls feed() and tick() on every pass; nothing
# here blocks or allocates on those calls (the LED level comes from the pattern table and the tick counter).
#
#   st = Status(profile, config)   # LED starts the BOOTING pattern; the watchdog is not armed yet
#   st.arm()                       # after boot (model loaded or not): machine.WDT starts, from now on feed()
#   st.set(IDLE or MODEL_ERROR)    # the base pattern while serving
#   st.busy() ... st.done(error)   # around one request: LED solid on, then back (error: a triple flash first)
#   st.feed(); st.tick()           # in the serve loop
#
# Patterns (docs/firmware.md), durations in ms, starting with LED on:
#   BOOTING      100 on / 100 off                  fast blink until the board serves
#   IDLE         60 on / 140 off / 60 on / 1740 off a double blip every 2 s: serving, model loaded
#   MODEL_ERROR  1000 on / 1000 off                slow blink: serving INFO only (model missing or bad)
#   BUSY         solid on                          a request is being handled (inference)
#   ERROR        40 on / 60 off, three times        once, after an error frame was sent; then the base pattern
#
# config (reku.json): "watchdog_ms" (default 8000; 0 switches the watchdog off; the rp2 WDT accepts at
# most 8388 ms), "led" (default true; false leaves the LED off).
# Valid on MicroPython and CPython; `machine` may be injected (tests), and a port without machine.WDT or a
# board without an LED makes the corresponding part a no-op.

BOOTING = 0
IDLE = 1
MODEL_ERROR = 2
BUSY = 3
ERROR = 4
NAMES = ("booting", "idle", "model_error", "busy", "error")
PATTERNS = (
    (100, 100),
    (60, 140, 60, 1740),
    (1000, 1000),
    (1, 0),                 # solid on
    (40, 60, 40, 60, 40, 60),
)
ONE_SHOT = (False, False, False, False, True)
# ws2812 colours (r, g, b) while the LED is "on", per pattern: dim so that a bare LED does not dazzle.
COLOURS = ((0, 0, 24), (0, 16, 0), (24, 8, 0), (16, 16, 16), (32, 0, 0))
WDT_DEFAULT_MS = 8000
WDT_MAX_MS = {"rp2": 8388}


try:
    from time import ticks_ms, ticks_diff
except ImportError:                 # CPython (the virtual board's CPython runtime, host tests)
    from rkfw.port import ticks_ms, ticks_diff


class _GpioLed:
    def __init__(self, machine, pin):
        self.pin = machine.Pin(pin, machine.Pin.OUT)

    def write(self, on, state):
        self.pin.value(1 if on else 0)


class _PixelLed:
    def __init__(self, machine, pin):
        import neopixel
        self.np = neopixel.NeoPixel(machine.Pin(pin, machine.Pin.OUT), 1)

    def write(self, on, state):
        self.np[0] = COLOURS[state] if on else (0, 0, 0)
        self.np.write()


class Status:
    def __init__(self, profile, config=None, machine=None, clock=None):
        config = config or {}
        if machine is None:
            try:
                import machine
            except ImportError:
                machine = None
        self.machine = machine
        self.clock = clock or ticks_ms
        self.error = None           # why the LED or watchdog could not be set up (for INFO / the log)
        ms = config.get("watchdog_ms", WDT_DEFAULT_MS)
        limit = WDT_MAX_MS.get(profile.get("port"))
        if ms and limit and ms > limit:
            ms = limit
        self.wdt_ms = ms if ms and ms > 0 else 0
        self.wdt = None
        self.led = None
        pin = profile.get("led")
        kind = profile.get("led_type", "none" if pin is None else "gpio")
        if machine is not None and pin is not None and config.get("led", True):
            try:
                if kind == "ws2812":
                    self.led = _PixelLed(machine, pin)
                elif kind == "gpio":
                    self.led = _GpioLed(machine, pin)
            except Exception as e:     # a port without the pin name, no neopixel module: serve without LED
                self.error = "LED %r: %s" % (pin, e)
                self.led = None
        self.level = -1             # what the LED shows now (-1: not written yet)
        self.shown = -1             # the pattern it was written for (ws2812 colours differ per pattern)
        self.timer = None
        self.base = BOOTING
        self.state = BOOTING
        self.t0 = self.clock()
        self.tick()

    # ---- watchdog -------------------------------------------------------------------------------------
    def arm(self):
        """Start the watchdog (it cannot be stopped again on rp2 or esp32). Returns True when armed."""
        if self.wdt is not None or not self.wdt_ms or self.machine is None:
            return self.wdt is not None
        WDT = getattr(self.machine, "WDT", None)
        if WDT is None:
            return False
        try:
            self.wdt = WDT(timeout=self.wdt_ms)
        except Exception as e:
            self.error = "watchdog: %s" % e
            return False
        return True

    def feed(self):
        if self.wdt is not None:
            self.wdt.feed()

    def maintenance(self):
        """Leaving the serve loop for the REPL (Ctrl-C): a periodic timer keeps feeding an armed watchdog,
        so that a person at the REPL is not reset under their fingers. A reset serves again."""
        if self.wdt is None:
            return False
        Timer = getattr(self.machine, "Timer", None)
        if Timer is None:
            return False
        wdt = self.wdt
        self.timer = Timer(-1)
        self.timer.init(period=max(self.wdt_ms // 4, 100), mode=Timer.PERIODIC, callback=lambda t: wdt.feed())
        return True

    # ---- LED ------------------------------------------------------------------------------------------
    def set(self, state):
        """Base pattern (BOOTING, IDLE, MODEL_ERROR), or a transient one (BUSY, ERROR)."""
        if state <= MODEL_ERROR:
            self.base = state
        self.state = state
        self.t0 = self.clock()
        self.tick()

    def busy(self):
        self.set(BUSY)

    def done(self, error=False):
        """A request was answered; error: the answer was an error frame."""
        self.set(ERROR if error else self.base)

    def tick(self, now=None):
        """Drive the LED from the pattern and the time since it started. Returns the level (0/1)."""
        if now is None:
            now = self.clock()
        state = self.state
        pat = PATTERNS[state]
        t = ticks_diff(now, self.t0)
        period = 0
        for d in pat:
            period += d
        if ONE_SHOT[state]:
            if t >= period:
                state = self.state = self.base
                self.t0 = now
                pat = PATTERNS[state]
                t = 0
                period = 0
                for d in pat:
                    period += d
        if period:
            t %= period
        on = 1
        level = 1
        for d in pat:
            if t < d:
                level = on
                break
            t -= d
            on ^= 1
        if level != self.level or state != self.shown:
            self.level = level
            self.shown = state
            if self.led is not None:
                self.led.write(level, state)
        return level

    def name(self):
        return NAMES[self.state]
