# Board entry point: MicroPython runs this after boot.py. Ctrl-C on the USB REPL stops it for maintenance.
import rkfw.app

rkfw.app.main()
