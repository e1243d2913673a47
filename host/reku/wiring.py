"""`reku wiring --board NAME [--host pi|arduino|generic] [--out FILE.svg]`: the wires between a board and the
host that talks to it, as a hand-written SVG (no drawing library) plus the same list as text.

The connections come from the board profile (rkfw.boards) and a small table of host headers below;
`connections()` is the single list both the SVG and the text are drawn from."""

from pathlib import Path
from xml.sax.saxutils import escape

from rkfw import boards

from .errors import RekuError

I2C_PULLUP = "4.7 kΩ"
READY_PULLUP = "10 kΩ"

# Host headers: role -> (name on the host, header pin). A header pin that is a number is a pin of the
# Raspberry Pi's 40-pin header; other labels are printed on the board (Arduino Uno) or generic.
HOSTS = {
    "pi": {
        "title": "Raspberry Pi (40-pin header)",
        "short": "Raspberry Pi",
        "logic": "3.3 V",
        "pins": {"3v3": ("3V3", "1"), "5v": ("5V", "2"), "gnd": ("GND", "6"),
                 "tx": ("GPIO14 TXD", "8"), "rx": ("GPIO15 RXD", "10"),
                 "sda": ("GPIO2 SDA1", "3"), "scl": ("GPIO3 SCL1", "5"), "ready": ("GPIO17", "11")},
        "i2c_pullups_on_host": "1.8 kΩ",
        "notes": [
            ("uart", "UART: enable the serial port and disable the login shell on it (raspi-config > Interface "
                     "Options > Serial Port); the port is /dev/serial0."),
            ("i2c", "I2C: enable it (raspi-config > Interface Options > I2C); bus 1 is /dev/i2c-1. The Pi already "
                    "has 1.8 kΩ pull-ups to 3V3 on GPIO2/GPIO3, drawn dashed: add no others."),
            ("ready", "READY: configure GPIO17 as an input with pull-up (or fit the 10 kΩ); it goes low while a "
                      "reply is waiting."),
        ],
    },
    "arduino": {
        "title": "Arduino Uno R3 (5 V logic)",
        "short": "Arduino Uno R3",
        "logic": "5 V",
        "pins": {"3v3": ("3.3V", "3.3V"), "5v": ("5V", "5V"), "gnd": ("GND", "GND"),
                 "tx": ("TX", "D1"), "rx": ("RX", "D0"),
                 "sda": ("SDA", "A4"), "scl": ("SCL", "A5"), "ready": ("INT0", "D2")},
        "level_shifter": True,
        "notes": [
            ("all", "The Uno is 5 V logic and the board is 3.3 V: every signal goes through a bidirectional "
                    "level shifter (LV = 3.3 V, HV = 5 V, common GND). Pull-ups are on the 3.3 V side."),
            ("uart", "UART: D0/D1 are also the Uno's USB serial; unplug them while uploading a sketch."),
            ("i2c", "I2C: the Wire library turns on the Uno's internal pull-ups to 5 V; the shifter keeps them "
                    "off the board."),
        ],
    },
    "generic": {
        "title": "Host (any 3.3 V microcontroller or computer)",
        "short": "any 3.3 V host",
        "logic": "3.3 V",
        "pins": {"3v3": ("3V3", ""), "5v": ("5V", ""), "gnd": ("GND", ""),
                 "tx": ("UART TX", ""), "rx": ("UART RX", ""),
                 "sda": ("I2C SDA", ""), "scl": ("I2C SCL", ""), "ready": ("GPIO in", "")},
        "notes": [
            ("all", "Host signals must be 3.3 V logic; use a level shifter for a 5 V host."),
        ],
    },
}

COLORS = {"5v": "#d62728", "gnd": "#222222", "uart-tx": "#1f77b4", "uart-rx": "#2ca02c",
          "sda": "#9467bd", "scl": "#e6850e", "ready": "#8c564b", "3v3": "#c0392b"}


def host_names():
    return sorted(HOSTS)


def load_board(name):
    try:
        return boards.load(name)
    except boards.BoardError as e:
        raise RekuError(str(e))


def _pin_text(header):
    """'pin 6' for a numbered header pin, the label itself otherwise ('J3-11', 'D2')."""
    if header == "":
        return ""
    return "pin " + header if header.isdigit() else header


def _label(name, header, sep=" · "):
    """'GP4 · pin 6', 'GPIO17 · J3-11'; just the name when the header label is the name itself."""
    pt = _pin_text(header)
    return name if pt in ("", name) else name + sep + pt


def _paren(name, header):
    """'GP4 (pin 6)'; just the name when the header label is the name itself."""
    pt = _pin_text(header)
    return name if pt in ("", name) else "%s (%s)" % (name, pt)


def connections(profile, host="pi"):
    """Every wire between the board and the host, in drawing order. Each is a dict with
    signal, board_gpio (None for power), board_name, board_header, board_function, host_role, host_name,
    host_header, direction ('to_host', 'to_board', 'both', 'power'), pullup (None or resistor text),
    optional (bool)."""
    if host not in HOSTS:
        raise RekuError("unknown host %r (one of %s)" % (host, ", ".join(host_names())))
    h = HOSTS[host]["pins"]
    uart, i2c = profile["uart"], profile["i2c"]

    def gpio(signal, pin, function, role, direction, pullup=None, optional=False):
        return {"signal": signal, "board_gpio": pin, "board_name": boards.gpio_name(profile, pin),
                "board_header": boards.header_pin(profile, pin), "board_function": function,
                "host_role": role, "host_name": h[role][0], "host_header": h[role][1],
                "direction": direction, "pullup": pullup, "optional": optional}

    out = []
    if profile["i2c_target"]:
        i2c_pull = HOSTS[host].get("i2c_pullups_on_host") or I2C_PULLUP
        out.append(gpio("sda", i2c["sda"], "I2C%d SDA" % i2c["id"], "sda", "both", i2c_pull))
        out.append(gpio("scl", i2c["scl"], "I2C%d SCL" % i2c["id"], "scl", "to_board", i2c_pull))
    if profile.get("ready_pin") is not None:
        out.append(gpio("ready", profile["ready_pin"], "READY (open-drain, active low)", "ready", "to_host",
                        READY_PULLUP))
    # TX and RX cross: the board's TX drives the host's RX and the host's TX drives the board's RX.
    out.append(gpio("uart-tx", uart["tx"], "UART%d TX" % uart["id"], "rx", "to_host"))
    out.append(gpio("uart-rx", uart["rx"], "UART%d RX" % uart["id"], "tx", "to_board"))
    out.append({"signal": "gnd", "board_gpio": None, "board_name": "GND", "board_header": profile["pin_gnd"],
                "board_function": "ground (always connect)", "host_role": "gnd", "host_name": h["gnd"][0],
                "host_header": h["gnd"][1], "direction": "power", "pullup": None, "optional": False})
    out.append({"signal": "5v", "board_gpio": None, "board_name": profile["label_5v"],
                "board_header": profile["pin_5v"], "board_function": "5 V in (only without USB power)",
                "host_role": "5v", "host_name": h["5v"][0], "host_header": h["5v"][1], "direction": "power",
                "pullup": None, "optional": True})
    return out


def text_table(profile, host="pi"):
    """The wiring as lines of text: what `reku wiring` prints."""
    lines = ["%s (%s) <-> %s" % (profile["title"], profile["chip"].upper(), HOSTS[host]["title"])]
    for c in connections(profile, host):
        board = _paren(c["board_name"], c["board_header"])
        hostp = _paren(c["host_name"], c["host_header"])
        arrow = {"to_host": "->", "to_board": "<-", "both": "<->", "power": "---"}[c["direction"]]
        extra = ""
        if c["pullup"]:
            extra = "  pull-up %s to 3.3 V" % c["pullup"]
        if c["optional"]:
            extra += "  (optional)"
        lines.append("  %-8s board %-22s %-3s host %-24s %s%s" % (
            c["signal"], board, arrow, hostp, c["board_function"], extra))
    if not profile["i2c_target"]:
        lines.append("  no I2C: the %s has no I2C target in MicroPython; use UART" % profile["chip"].upper())
    return lines


# ---- SVG ------------------------------------------------------------------------------------------------

W = 1040
BOARD_X0, BOARD_X1 = 24, 360
HOST_X0, HOST_X1 = 680, 1016
ROW0 = 150          # y of the 3V3 rail row
ROW_GAP = 50
FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"


def _t(x, y, s, size=13, anchor="start", weight="normal", color="#222", extra=""):
    return ('<text x="%d" y="%d" font-size="%d" text-anchor="%s" font-weight="%s" fill="%s"%s>%s</text>'
            % (x, y, size, anchor, weight, color, extra, escape(s)))


def _wrap(text, width):
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = (cur + " " + w).strip()
    if cur:
        lines.append(cur)
    return lines


def render_svg(profile, host="pi"):
    conns = connections(profile, host)
    hdef = HOSTS[host]
    shifter = hdef.get("level_shifter", False)
    host_pulls = "i2c_pullups_on_host" in hdef

    # rows: 0 = 3V3 rail, then one per connection; UART TX/RX rows are where the crossing happens.
    y_of = {}
    y = ROW0 + 70
    for c in conns:
        y_of[c["signal"]] = y
        y += ROW_GAP
    rows_end = y - ROW_GAP
    topics = {"all", "uart"} | ({"i2c"} if profile["i2c_target"] else set()) | \
        ({"ready"} if profile.get("ready_pin") is not None else set())
    notes = [text for topic, text in hdef["notes"] if topic in topics]
    if not profile["i2c_target"]:
        notes.insert(0, "The %s has no I2C target in MicroPython (no machine.I2CTarget): connect the UART. "
                        "READY still tells the host a reply is waiting." % profile["chip"].upper())
    notes.append("Power: the board runs from its own USB cable, or from the host's 5V into %s (%s) when its "
                 "USB is unplugged (dashed). Always connect GND. Never join the two 3V3 pins."
                 % (profile["label_5v"], _pin_text(profile["pin_5v"])))
    notes[-1] = notes[-1].replace("%s (%s)" % (profile["label_5v"], profile["label_5v"]), profile["label_5v"])
    note_lines = []
    for i, n in enumerate(notes):
        for j, line in enumerate(_wrap(n, 128)):
            note_lines.append(("%d. " % (i + 1) if j == 0 else "   ") + line)
    H = rows_end + 70 + 60 + 18 * len(note_lines) + 20

    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="%s" data-board="%s" data-host="%s">' % (W, H, W, H, FONT, escape(profile["name"]), host),
           '<title>%s</title>' % escape("Wiring: %s to %s" % (profile["title"], hdef["title"])),
           '<defs>']
    for sig, col in COLORS.items():
        out.append('<marker id="arrow-%s" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="12" '
                   'markerHeight="12" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>'
                   % (sig, col))
    out.append('</defs>')
    out.append('<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>' % (W, H))

    # title
    link = "UART%d %d baud 8N1" % (profile["uart"]["id"], profile["uart"]["baud"])
    if profile["i2c_target"]:
        link += "  ·  I2C target at 0x%02X" % profile["i2c"]["address"]
    headline = "%s  ↔  %s" % (profile["title"], hdef["title"])
    out.append(_t(24, 34, headline, 19 if len(headline) <= 80 else 15, weight="bold"))
    out.append(_t(24, 58, "%s (%s, MicroPython %s)  ·  %s  ·  READY open-drain, active low"
                  % (profile["name"], profile["chip"].upper(), profile["mp_board"], link), 13, color="#555"))
    out.append(_t(24, 80, "Board pins: GPIO name · header pin as printed in the board's documentation.  "
                          "Host pins: name · header pin.", 12, color="#777"))

    box_top, box_bot = ROW0 - 40, rows_end + 34
    out.append('<rect x="%d" y="%d" width="%d" height="%d" rx="10" fill="#eef5ee" stroke="#2e7d32" '
               'stroke-width="2"/>' % (BOARD_X0, box_top, BOARD_X1 - BOARD_X0, box_bot - box_top))
    out.append(_t(BOARD_X0 + 14, box_top + 22, "BOARD: %s (%s)" % (profile["name"], profile["chip"].upper()), 14, weight="bold",
                  color="#1b5e20"))
    out.append('<rect x="%d" y="%d" width="%d" height="%d" rx="10" fill="#eef2fa" stroke="#1f4e9c" '
               'stroke-width="2"/>' % (HOST_X0, box_top, HOST_X1 - HOST_X0, box_bot - box_top))
    out.append(_t(HOST_X0 + 14, box_top + 22, "HOST: %s" % hdef["short"], 14, weight="bold",
                  color="#0d3c84"))

    # 3V3 row: the host's 3V3 feeds the pull-up rail; the board's 3V3 stays unconnected.
    h3 = hdef["pins"]["3v3"]
    out.append(_t(BOARD_X1 - 14, ROW0 + 5, _label(profile["label_3v3"], profile["pin_3v3"]),
                  13, anchor="end", color="#999"))
    out.append(_t(BOARD_X0 + 14, ROW0 + 5, "3.3 V out: leave unconnected", 12, color="#999"))
    host3 = _label(h3[0], h3[1])
    out.append(_t(HOST_X0 + 14, ROW0 + 5, host3, 13, weight="bold", color=COLORS["3v3"]))
    out.append(_t(HOST_X1 - 14, ROW0 + 5, "pull-up supply", 12, anchor="end", color="#777"))
    pulls = [c for c in conns if c["pullup"]]
    rail_x0 = 0
    if pulls:
        # resistor columns: near the host for 3.3 V hosts, on the board side of the level shifter otherwise
        xs = list(range(396, 396 + 34 * len(pulls), 34)) if shifter else \
            list(range(HOST_X0 - 40 - 34 * (len(pulls) - 1), HOST_X0 - 39, 34))
        rail_x0 = min(xs)
        out.append('<g class="rail" data-net="3v3" data-host-pin="%s">' % escape(h3[1] or h3[0]))
        out.append('<path d="M%d,%d H%d" stroke="%s" stroke-width="3" fill="none"/>'
                   % (HOST_X0, ROW0, rail_x0, COLORS["3v3"]))
        out.append('<circle cx="%d" cy="%d" r="4" fill="%s"/>' % (HOST_X0, ROW0, COLORS["3v3"]))
        out.append('</g>')
        for x, c in zip(xs, pulls):
            yw = y_of[c["signal"]]
            on_host = host_pulls and c["signal"] in ("sda", "scl")
            dash = ' stroke-dasharray="5,4"' if on_host else ""
            ry = yw - 34
            out.append('<g class="pullup" data-net="%s" data-value="%s" data-on-host="%s">'
                       % (c["signal"], escape(c["pullup"]), "yes" if on_host else "no"))
            out.append('<path d="M%d,%d V%d M%d,%d V%d" stroke="%s" stroke-width="2" fill="none"%s/>'
                       % (x, ROW0, ry - 13, x, ry + 13, yw, COLORS["3v3"], dash))
            out.append('<rect x="%d" y="%d" width="12" height="26" fill="#fff" stroke="#333" stroke-width="2"%s/>'
                       % (x - 6, ry - 13, dash))
            out.append('<circle cx="%d" cy="%d" r="4" fill="%s"/><circle cx="%d" cy="%d" r="4" fill="%s"/>'
                       % (x, ROW0, COLORS["3v3"], x, yw, COLORS[c["signal"]]))
            label = c["pullup"] + (" (on the Pi)" if on_host else "")
            out.append(_t(x - 9, ry + 4, label, 10, anchor="end", color="#444"))
            out.append('</g>')

    if shifter:
        sy0, sy1 = y_of[conns[0]["signal"]] - 28, y_of["uart-rx"] + 22
        out.append('<g class="level-shifter">')
        out.append('<rect x="566" y="%d" width="90" height="%d" rx="6" fill="#fff8e1" stroke="#b58900" '
                   'stroke-width="2" stroke-dasharray="6,4"/>' % (sy0, sy1 - sy0))
        out.append(_t(611, sy0 - 8, "level shifter", 11, anchor="middle", color="#8a6d00", weight="bold"))
        out.append(_t(572, sy1 + 14, "3.3 V", 10, color="#8a6d00"))
        out.append(_t(650, sy1 + 14, "5 V", 10, anchor="end", color="#8a6d00"))
        out.append('</g>')

    cross_x = 490 if shifter else 500
    for c in conns:
        sig = c["signal"]
        col = COLORS[sig]
        yb = y_of[sig]
        # which host row this wire lands on: the UART pair is drawn crossed
        if sig == "uart-tx":
            yh = y_of["uart-rx"]
        elif sig == "uart-rx":
            yh = y_of["uart-tx"]
        else:
            yh = yb
        dash = ' stroke-dasharray="9,6"' if c["optional"] else ""
        board_txt = _label(c["board_name"], c["board_header"])
        host_txt = _label(c["host_name"], c["host_header"])
        # labels at the ends
        out.append(_t(BOARD_X1 - 14, yb + 5, board_txt, 13, anchor="end", weight="bold", color=col))
        out.append(_t(BOARD_X0 + 14, yb + 5, c["board_function"], 12, color="#333"))
        out.append(_t(HOST_X0 + 14, yh + 5, host_txt, 13, weight="bold", color=col))
        if sig in ("uart-tx", "uart-rx"):
            # the host-side function of the row this wire lands on
            out.append(_t(HOST_X1 - 14, yh + 5, "receives" if sig == "uart-tx" else "sends", 12,
                          anchor="end", color="#555"))
        if sig == "uart-tx":
            d = "M%d,%d H%d L%d,%d H%d" % (BOARD_X1, yb, cross_x - 40, cross_x + 40, yh, HOST_X0)
            marker = ' marker-end="url(#arrow-%s)"' % sig
        elif sig == "uart-rx":
            d = "M%d,%d H%d L%d,%d H%d" % (HOST_X0, yh, cross_x + 40, cross_x - 40, yb, BOARD_X1)
            marker = ' marker-end="url(#arrow-%s)"' % sig
        elif c["direction"] == "to_host":
            d = "M%d,%d H%d" % (BOARD_X1, yb, HOST_X0)
            marker = ' marker-end="url(#arrow-%s)"' % sig
        elif c["direction"] == "to_board":
            d = "M%d,%d H%d" % (HOST_X0, yh, BOARD_X1)
            marker = ' marker-end="url(#arrow-%s)"' % sig
        elif c["direction"] == "both":
            d = "M%d,%d H%d" % (BOARD_X1, yb, HOST_X0)
            marker = ' marker-start="url(#arrow-%s)" marker-end="url(#arrow-%s)"' % (sig, sig)
        else:
            d = "M%d,%d H%d" % (BOARD_X1, yb, HOST_X0)
            marker = ""
        out.append('<g class="wire" data-signal="%s" data-board-gpio="%s" data-board-pin="%s" '
                   'data-host-role="%s" data-host-pin="%s" data-optional="%s">'
                   % (sig, "" if c["board_gpio"] is None else c["board_gpio"], escape(c["board_header"]),
                      c["host_role"], escape(c["host_header"] or c["host_name"]), "yes" if c["optional"] else "no"))
        out.append('<path d="%s" stroke="%s" stroke-width="3" fill="none"%s%s/>' % (d, col, dash, marker))
        out.append('<rect x="%d" y="%d" width="8" height="8" fill="%s"/>' % (BOARD_X1 - 4, yb - 4, col))
        out.append('<rect x="%d" y="%d" width="8" height="8" fill="%s"/>' % (HOST_X0 - 4, yh - 4, col))
        out.append('</g>')
    # a word on the crossing, under the crossed pair
    out.append(_t(cross_x - (20 if shifter else 0), y_of["uart-rx"] + 30, "TX → RX, RX ← TX (crossed)", 11, anchor="middle",
                  color="#555"))

    y = rows_end + 80
    out.append(_t(24, y, "Notes", 14, weight="bold"))
    y += 22
    for line in note_lines:
        out.append(_t(24, y, line, 12, color="#333", extra=' xml:space="preserve"'))
        y += 18
    out.append(_t(W - 24, H - 10, "drawn by reku wiring from hw/boards/%s.json" % profile["name"], 10,
                  anchor="end", color="#aaa"))
    out.append('</svg>')
    return "\n".join(out) + "\n"


# ---- CLI ------------------------------------------------------------------------------------------------

def configure(p):
    p.add_argument("--board", required=True, help="board profile name from hw/boards (or a .json path)")
    p.add_argument("--host", default="pi", choices=host_names(), help="what the board is wired to (default: pi)")
    p.add_argument("--out", help="SVG file to write (default: BOARD-HOST.svg)")


def run(args):
    profile = load_board(args.board)
    out = Path(args.out or "%s-%s.svg" % (profile["name"], args.host))
    svg = render_svg(profile, args.host)
    try:
        out.write_text(svg, encoding="utf-8")
    except OSError as e:
        raise RekuError("cannot write %s: %s" % (out, e.strerror or e))
    for line in text_table(profile, args.host):
        print(line)
    print("wrote %s" % out)
    return 0
