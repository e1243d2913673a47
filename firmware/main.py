# Board entry point: MicroPython runs this after boot.py. Ctrl-C on the USB REPL stops it for maintenance.
# The model file is read before anything else, while the heap is empty: it needs one contiguous block, and on the
# ESP32 family the heap grows by whole blocks of ESP-IDF memory whose largest shrinks as the firmware allocates.
try:
    with open("model.rku", "rb") as f:
        model = f.read()
except (OSError, MemoryError):
    model = None
import rkfw.app
import rkfw.boot

served = rkfw.boot.start(model)
model = None
rkfw.app.drop("boot")               # boot's code is not needed once the board serves
if served:
    rkfw.app.run(*served)
