// A Web Serial port for the browser tests (tests/test_playground.py): navigator.serial.requestPort() gives a port
// whose bytes go to and come from a `reku sim` pty through the test's HTTP bridge (BRIDGE, substituted by the
// test). It implements what the page uses of the Web Serial API (open, readable, writable, close, getInfo), so the
// page's own code -- client.js, codec.js -- runs unchanged over a real serial path. What it replaces, and what stays
// untested, is the browser's port chooser (the permission prompt) and its USB driver.
(() => {
  const BRIDGE = "__BRIDGE__";
  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const unhex = (h) => Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16));

  class ShimPort {
    constructor() { this.readable = null; this.writable = null; this.opened = false; }

    getInfo() { return { usbVendorId: 0x2e8a, usbProductId: 0x0005 }; }     // what a Pico's USB says

    async open(options) {
      if (!options || !options.baudRate) throw new TypeError("baudRate is required");
      if (this.opened) throw new DOMException("The port is already open.", "InvalidStateError");
      this.opened = true;
      this.baudRate = options.baudRate;
      let closed = false;
      this._close = () => { closed = true; };
      this.readable = new ReadableStream({
        async pull(controller) {
          for (;;) {
            if (closed) { controller.close(); return; }
            const r = await fetch(BRIDGE + "/read");
            const data = unhex(await r.text());
            if (data.length) { controller.enqueue(data); return; }
          }
        },
        cancel() { closed = true; },
      });
      this.writable = new WritableStream({
        async write(chunk) {
          await fetch(BRIDGE + "/write", { method: "POST", headers: { "Content-Type": "text/plain" }, body: hex(chunk) });
        },
      });
    }

    async close() {
      if (this._close) this._close();
      this.opened = false;
      this.readable = this.writable = null;
    }
  }

  Object.defineProperty(navigator, "serial", {
    value: {
      requestPort: async () => new ShimPort(),
      getPorts: async () => [],
      addEventListener() {},
      removeEventListener() {},
    },
    configurable: true,
  });
})();
