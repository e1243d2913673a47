# Boot of the co-processor: profile, configuration, status LED and watchdog, the App with its model, and the
# transports. main.py calls start() once and then drops this module (rkfw.app.drop), so its code does not stay on
# the heap while the board serves.
from rkfw import app as A


def read_profile(path="board.json"):
    """The deployed board profile as a dict, or None. The board reads it as plain JSON: `reku deploy` and
    `reku doctor` validate it on the host with rkfw.boards, whose validator would cost the board ~10 KB of heap."""
    p = A._read_json(path)
    return p if "uart" in p and "i2c" in p else None


def open_transports(profile, config):
    """The transports named in the configuration (default: the profile's UART)."""
    from rkfw import transport
    names = config.get("transports", ["uart"])
    out = []
    for name in names:
        if name == "uart":
            import machine
            out.append(transport.Uart(machine, profile["uart"], config.get("baud")))
        elif name == "usb":
            out.append(transport.UsbStdio())
        elif name == "i2c":
            if not profile.get("i2c_target", False):
                print("reku: %s has no I2C target (i2c_target false in its profile): serving UART instead"
                      % profile.get("name", "this board"))
                if "uart" not in names:
                    import machine
                    out.append(transport.Uart(machine, profile["uart"], config.get("baud")))
                continue
            import machine
            from rkfw import i2c_target
            out.append(i2c_target.I2c(machine, profile["i2c"], config.get("i2c_address"),
                                     profile.get("ready_pin") if config.get("ready_pin", True) else None))
        else:
            raise ValueError("unknown transport %r in reku.json" % name)
    return out


def start(model=None):
    """Boot: (app, transports) to serve, or None without a profile. model: the bytes of MODEL_FILE when main.py
    read them first (one block, early)."""
    from rkfw import status
    profile = read_profile()
    if profile is None:
        # Without a profile the board cannot know its pins: one line on the REPL, and no serving.
        print("reku: board.json missing or unreadable (no uart/i2c): run `reku deploy --board NAME`")
        return None
    config = A._read_json(A.CONFIG_FILE)
    st = status.Status(profile, config)     # LED: BOOTING until the board serves
    app = A.App(profile, config)
    app.status = st
    app.load_model(preloaded=model)         # LED: IDLE, or MODEL_ERROR (INFO still answers)
    model = None
    if app.model_error:
        print("reku: model not loaded:", app.model_error)
    transports = open_transports(profile, config)
    if st.error:
        print("reku:", st.error)
    # Armed once the board serves: loading a large model may take longer than the timeout. From here on the
    # serve loop feeds it, and so does every step of an inference (App.between_steps).
    st.arm()
    print("reku %s serving on %s%s" % (A.FW_VERSION, ", ".join(t.name for t in transports),
                                       " (watchdog %d ms)" % st.wdt_ms if st.wdt is not None else ""))
    return app, transports
