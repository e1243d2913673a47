# Board profiles: the ONE reader of hw/boards/*.json, used on the board (the deployed profile is
# /board.json) and by the host (`from rkfw import boards`). Runs on MicroPython and CPython.
# The fields are documented in hw/README.md.
import json

try:
    import os
except ImportError:  # pragma: no cover - every MicroPython port we target has os
    os = None


class BoardError(ValueError):
    """A profile that is missing, unreadable or invalid. The message says which file and which field."""


# What each chip allows. first_ok/last: GPIO range; bad: pins wired to the flash chip (or absent);
# input_only: pins that cannot drive an output (TX, SDA, SCL and READY must be able to).
CHIPS = {
    "rp2040": {"port": "rp2", "format": "uf2", "offset": 0, "arch": "armv6m", "last": 29,
               "bad": (), "input_only": ()},
    "rp2350": {"port": "rp2", "format": "uf2", "offset": 0, "arch": "armv7emsp", "last": 47,
               "bad": (), "input_only": ()},
    "esp32": {"port": "esp32", "format": "bin", "offset": 0x1000, "arch": "xtensawin", "last": 39,
              "bad": (6, 7, 8, 9, 10, 11, 20, 24, 28, 29, 30, 31), "input_only": (34, 35, 36, 37, 38, 39)},
    "esp32s3": {"port": "esp32", "format": "bin", "offset": 0, "arch": "xtensawin", "last": 48,
                "bad": (22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32), "input_only": ()},
    "esp32c3": {"port": "esp32", "format": "bin", "offset": 0, "arch": "rv32imc", "last": 21,
                "bad": (12, 13, 14, 15, 16, 17), "input_only": ()},
}
PORTS = ("rp2", "esp32")
EMITTERS = ("native", "viper")
LED_TYPES = ("gpio", "ws2812", "none")

# field: (type check name, required). Nested dicts list their own fields.
_STR, _INT, _BOOL = "a string", "an integer", "true or false"
FIELDS = (
    ("name", _STR), ("title", _STR), ("chip", _STR), ("port", _STR), ("mp_board", _STR),
    ("flash_kb", _INT), ("ram_kb", _INT), ("heap_kb", _INT), ("block_kb", _INT), ("fs_kb", _INT),
    ("firmware_format", _STR), ("firmware_offset", _INT),
    ("i2c_target", _BOOL), ("romfs", _BOOL), ("native_arch", _STR), ("gpio_prefix", _STR),
    ("pin_3v3", _STR), ("pin_gnd", _STR), ("pin_5v", _STR), ("label_3v3", _STR), ("label_5v", _STR),
)
UART_FIELDS = ("id", "tx", "rx", "baud")
I2C_FIELDS = ("id", "sda", "scl", "address")
DEFAULT_I2C_ADDRESS = 0x42


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check_type(v, kind):
    if kind == _STR:
        return isinstance(v, str) and len(v) > 0
    if kind == _INT:
        return _is_int(v)
    return isinstance(v, bool)


def _default_dir():
    """hw/boards of the repository on the host; on a board only /board.json is deployed."""
    import sys
    if os is None or sys.implementation.name == "micropython":
        return "hw/boards"
    env = getattr(os, "environ", None)
    root = env.get("REKU_ROOT") if env is not None else None
    if not root:
        try:
            here = os.path.dirname(os.path.abspath(__file__))
            root = os.path.dirname(os.path.dirname(here))
        except AttributeError:
            return "hw/boards"
    return os.path.join(root, "hw", "boards")


BOARDS_DIR = _default_dir()


def names(directory=None):
    """The names of the profiles in hw/boards (file names without .json), sorted."""
    d = directory or BOARDS_DIR
    try:
        entries = os.listdir(d)
    except (OSError, AttributeError):
        return []
    return sorted(e[:-5] for e in entries if e.endswith(".json") and not e.startswith("."))


def _where(name, directory):
    if directory is None:
        return "hw/boards/%s.json" % name
    return "%s/%s.json" % (directory.rstrip("/"), name)


def path_of(name_or_path, directory=None):
    """(file path, how to name it in messages) for a board name or a .json path."""
    s = str(name_or_path)
    if s.endswith(".json") or "/" in s or "\\" in s:
        return s, s
    d = directory or BOARDS_DIR
    return "%s/%s.json" % (d.rstrip("/"), s), _where(s, directory)


def load(name_or_path="board.json", directory=None):
    """The validated profile (a dict) of a board given by name (`pico`) or by path (`/board.json`)."""
    path, where = path_of(name_or_path, directory)
    try:
        f = open(path)
    except OSError:
        if path == str(name_or_path):
            raise BoardError("%s: no such board profile" % where)
        known = names(directory)
        raise BoardError("unknown board %r (known: %s)" % (str(name_or_path), ", ".join(known) or "none"))
    try:
        text = f.read()
    finally:
        f.close()
    return parse(text, where)


def parse(text, where="board.json"):
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise BoardError("%s: not valid JSON (%s)" % (where, e))
    return validate(profile, where)


def _fail(where, msg):
    raise BoardError("%s: %s" % (where, msg))


def _pin(where, chip, field, v, output=True):
    if not _is_int(v):
        _fail(where, "%s must be a GPIO number" % field)
    c = CHIPS[chip]
    if v < 0 or v > c["last"]:
        _fail(where, "%s = %d is not a GPIO of the %s (0..%d)" % (field, v, chip, c["last"]))
    if v in c["bad"]:
        _fail(where, "%s = GPIO%d is used by the flash chip on the %s" % (field, v, chip))
    if output and v in c["input_only"]:
        _fail(where, "%s = GPIO%d is input-only on the %s" % (field, v, chip))


def validate(profile, where="board.json"):
    """Check a profile dict; returns it. Raises BoardError("<where>: <field> <problem>")."""
    if not isinstance(profile, dict):
        _fail(where, "a profile is a JSON object")
    for field, kind in FIELDS:
        if field not in profile:
            _fail(where, "%s missing" % field)
        if not _check_type(profile[field], kind):
            _fail(where, "%s must be %s" % (field, kind))
    chip = profile["chip"]
    if chip not in CHIPS:
        _fail(where, "chip %r unknown (one of %s)" % (chip, ", ".join(sorted(CHIPS))))
    c = CHIPS[chip]
    if profile["port"] != c["port"]:
        _fail(where, "port must be %r for chip %s" % (c["port"], chip))
    if profile["firmware_format"] != c["format"]:
        _fail(where, "firmware_format must be %r for chip %s" % (c["format"], chip))
    if profile["firmware_offset"] != c["offset"]:
        _fail(where, "firmware_offset must be 0x%x for chip %s" % (c["offset"], chip))
    if profile["native_arch"] != c["arch"]:
        _fail(where, "native_arch must be %r for chip %s" % (c["arch"], chip))
    for field in ("flash_kb", "ram_kb", "heap_kb", "block_kb", "fs_kb"):
        if profile[field] <= 0:
            _fail(where, "%s must be positive" % field)
    if profile["heap_kb"] > profile["ram_kb"]:
        _fail(where, "heap_kb larger than ram_kb")
    if profile["block_kb"] > profile["heap_kb"]:
        _fail(where, "block_kb (the largest single allocation) larger than heap_kb")
    if "mp_variant" in profile and not _check_type(profile["mp_variant"], _STR):
        _fail(where, "mp_variant must be %s" % _STR)
    if profile["fs_kb"] >= profile["flash_kb"]:
        _fail(where, "fs_kb must be smaller than flash_kb")

    for group, fields in (("uart", UART_FIELDS), ("i2c", I2C_FIELDS)):
        g = profile.get(group)
        if g is None:
            _fail(where, "%s missing" % group)
        if not isinstance(g, dict):
            _fail(where, "%s must be an object" % group)
        for field in fields:
            if field not in g:
                _fail(where, "%s.%s missing" % (group, field))
            if not _is_int(g[field]):
                _fail(where, "%s.%s must be an integer" % (group, field))
    uart, i2c = profile["uart"], profile["i2c"]
    _pin(where, chip, "uart.tx", uart["tx"])
    _pin(where, chip, "uart.rx", uart["rx"], output=False)
    if not 1200 <= uart["baud"] <= 1000000:
        _fail(where, "uart.baud must be 1200..1000000")
    _pin(where, chip, "i2c.sda", i2c["sda"])
    _pin(where, chip, "i2c.scl", i2c["scl"])
    if not 0x08 <= i2c["address"] <= 0x77:
        _fail(where, "i2c.address must be a 7-bit address 0x08..0x77")
    ready = profile.get("ready_pin")
    if ready is not None:
        _pin(where, chip, "ready_pin", ready)
    used = [("uart.tx", uart["tx"]), ("uart.rx", uart["rx"]), ("i2c.sda", i2c["sda"]),
            ("i2c.scl", i2c["scl"])]
    if ready is not None:
        used.append(("ready_pin", ready))
    seen = {}
    for field, pin in used:
        if pin in seen:
            _fail(where, "%s and %s are both GPIO%d" % (seen[pin], field, pin))
        seen[pin] = field

    led = profile.get("led", None)
    if not (led is None or led == "LED" or _is_int(led)):
        _fail(where, "led must be a GPIO number, \"LED\" or null")
    if _is_int(led):
        _pin(where, chip, "led", led)
    led_type = profile.get("led_type", "none" if led is None else "gpio")
    if led_type not in LED_TYPES:
        _fail(where, "led_type must be one of %s" % ", ".join(LED_TYPES))
    if (led is None) != (led_type == "none"):
        _fail(where, "led and led_type disagree")

    em = profile.get("emitters")
    if not isinstance(em, list) or any(e not in EMITTERS for e in em):
        _fail(where, "emitters must be a list of %s" % " and ".join(EMITTERS))

    header = profile.get("header")
    if not isinstance(header, dict):
        _fail(where, "header missing (GPIO number -> header pin label)")
    for field, pin in used:
        label = header.get(str(pin))
        if not isinstance(label, str) or not label:
            _fail(where, "header has no pin label for GPIO%d (%s)" % (pin, field))
    return profile


def gpio_name(profile, pin):
    """GPIO name as printed on the board or in its documentation: GP4, GPIO17."""
    return "%s%d" % (profile["gpio_prefix"], pin)


def header_pin(profile, pin):
    """Header pin label of a GPIO (for example "6" on a Pico, "J3-11" on an ESP32-DevKitC)."""
    return profile["header"][str(pin)]
