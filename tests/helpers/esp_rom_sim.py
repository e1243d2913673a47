"""A simulated ESP serial bootloader on a pseudo-terminal: enough of the ROM loader and of esptool's flasher
stub protocol (SLIP frames, sync, register reads, chip id, stub upload, compressed flash writes, MD5, erase)
for real esptool to detect the chip, run its stub, write and verify flash. The flash is a bytearray, so a
test can check what landed where. This stands in for the hardware, like the virtual board does.

Protocol reference: esptool's serial protocol documentation and esptool/loader.py (command ids, packet
layout "<BBHI", status bytes)."""

import hashlib
import os
import select
import struct
import threading
import tty
import zlib

from esptool.targets import CHIP_DEFS

SYNC, WRITE_REG, READ_REG = 0x08, 0x09, 0x0A
MEM_BEGIN, MEM_END, MEM_DATA = 0x05, 0x06, 0x07
FLASH_BEGIN, FLASH_DATA, FLASH_END = 0x02, 0x03, 0x04
SPI_SET_PARAMS, SPI_ATTACH, CHANGE_BAUD = 0x0B, 0x0D, 0x0F
DEFL_BEGIN, DEFL_DATA, DEFL_END, FLASH_MD5 = 0x10, 0x11, 0x12, 0x13
GET_SECURITY_INFO, ERASE_FLASH, ERASE_REGION = 0x14, 0xD0, 0xD1
FLASH_SIZE_CODE = {1 << 20: 0x14, 2 << 20: 0x15, 4 << 20: 0x16, 8 << 20: 0x17, 16 << 20: 0x18}


def slip(data):
    return b"\xc0" + data.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class EspRomSim:
    def __init__(self, chip="esp32", flash_size=4 << 20):
        self.chip = chip
        self.rom = CHIP_DEFS[chip]
        self.flash = bytearray(b"\xff" * flash_size)
        self.flash_size = flash_size
        self.stub = False
        self.log = []                      # (command name, details) in the order received
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.slave = slave
        self.port = os.ttyname(slave)
        self._stop = threading.Event()
        self._inflate = None
        self._defl_at = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        os.close(self.master)
        os.close(self.slave)

    # ---- framing -----------------------------------------------------------------------------------------
    def _serve(self):
        buf = bytearray()
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            buf += chunk
            while True:
                start = buf.find(b"\xc0")
                if start < 0:
                    buf.clear()
                    break
                end = buf.find(b"\xc0", start + 1)
                if end < 0:
                    del buf[:start]
                    break
                frame = bytes(buf[start + 1:end])
                del buf[:end]           # keep the closing 0xC0 as a possible opening one
                if not frame:
                    continue
                frame = frame.replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb")
                if len(frame) >= 8 and frame[0] == 0x00:
                    self._command(frame)

    def _send(self, op, value=0, payload=b"", status=0, error=0):
        body = payload + bytes([status, error, 0, 0])
        os.write(self.master, slip(struct.pack("<BBHI", 0x01, op, len(body), value) + body))

    # ---- commands ----------------------------------------------------------------------------------------
    def read_reg(self, addr):
        if addr == 0x40001000:                                     # CHIP_DETECT_MAGIC_REG_ADDR
            magic = getattr(self.rom, "MAGIC_VALUE", 0)
            return magic[0] if isinstance(magic, (list, tuple)) else magic
        if addr == self.rom.SPI_REG_BASE + self.rom.SPI_W0_OFFS:   # JEDEC id after RDID: size code at bits 16..23
            return (FLASH_SIZE_CODE[self.flash_size] << 16) | 0x4068
        return 0

    def _command(self, frame):
        _d, op, size, _chk = struct.unpack("<BBHI", frame[:8])
        data = frame[8:8 + size]
        if op == SYNC:
            self.log.append(("sync", None))
            for _ in range(8):
                self._send(SYNC, 0 if self.stub else 0x20120707)
        elif op == READ_REG:
            (addr,) = struct.unpack("<I", data[:4])
            self._send(op, self.read_reg(addr))
        elif op == GET_SECURITY_INFO:
            if getattr(self.rom, "USES_MAGIC_VALUE", True):
                self._send(op, 0, status=1, error=0x05)               # the ESP32 ROM has no such command
            else:
                self.log.append(("security_info", self.rom.IMAGE_CHIP_ID))
                self._send(op, 0, struct.pack("<IBBBBBBBBII", 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                              self.rom.IMAGE_CHIP_ID, 0))
        elif op == MEM_END:
            self._send(op)
            self.stub = True
            self.log.append(("stub", None))
            os.write(self.master, slip(b"OHAI"))
        elif op in (MEM_BEGIN, MEM_DATA, WRITE_REG, SPI_SET_PARAMS, SPI_ATTACH):
            self._send(op)
        elif op == CHANGE_BAUD:
            self.log.append(("change_baud", struct.unpack("<II", data[:8])[0]))
            self._send(op)
        elif op == ERASE_FLASH:
            self.log.append(("erase_flash", None))
            self.flash[:] = b"\xff" * self.flash_size
            self._send(op)
        elif op == DEFL_BEGIN:
            erase_size, _blocks, _bsize, offset = struct.unpack("<IIII", data[:16])
            self.log.append(("write_begin", offset))
            self._inflate = zlib.decompressobj()
            self._defl_at = offset
            self.flash[offset:offset + erase_size] = b"\xff" * min(erase_size, self.flash_size - offset)
            self._send(op)
        elif op == DEFL_DATA:
            length, _seq, _a, _b = struct.unpack("<IIII", data[:16])
            out = self._inflate.decompress(data[16:16 + length])
            self.flash[self._defl_at:self._defl_at + len(out)] = out
            self._defl_at += len(out)
            self._send(op)
        elif op == DEFL_END:
            self._send(op)
        elif op == FLASH_MD5:
            addr, size, _a, _b = struct.unpack("<IIII", data[:16])
            self.log.append(("md5", (addr, size)))
            digest = hashlib.md5(self.flash[addr:addr + size]).digest()
            self._send(op, 0, digest if self.stub else digest.hex().encode())
        else:
            self.log.append(("unknown", op))
            self._send(op, 0, status=1, error=0x05)
