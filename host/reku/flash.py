"""`reku flash --board NAME --port PORT --firmware FILE [--dry-run] [--erase]`: put MicroPython on a board.

- ESP32 family: through esptool's Python API (chip detection, optional erase, write at the profile's
  offset, verification, reset), with esptool's own progress output.
- RP2040/RP2350: copy the .uf2 onto the BOOTSEL drive (found automatically), or `picotool load` when
  picotool is installed; with --port, a running MicroPython board is first rebooted into BOOTSEL.

Before anything is written the image is checked against the board's chip: ESP .bin headers (chip id of
the bootloader and of the app, partition table) with esptool's image tools, UF2 family IDs block by block.
`--dry-run` prints the exact operations and touches nothing."""

import glob
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

from rkfw import boards

from .errors import RekuError

# ---- UF2 ------------------------------------------------------------------------------------------------
# Block layout and family IDs: github.com/microsoft/uf2 (README, utils/uf2families.json) and the RP2350
# datasheet, section 5.5.3 "UF2 targeting rules" (pico-sdk boot/uf2.h has the same constants).
UF2_MAGIC0, UF2_MAGIC1, UF2_MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
UF2_FLAG_NOT_MAIN_FLASH, UF2_FLAG_FAMILY = 0x00000001, 0x00002000
UF2_BLOCK = 512
FAMILIES = {
    0xE48BFF56: "RP2040",
    0xE48BFF57: "RP2XXX absolute",
    0xE48BFF58: "RP2XXX data",
    0xE48BFF59: "RP2350 ARM secure",
    0xE48BFF5A: "RP2350 RISC-V",
    0xE48BFF5B: "RP2350 ARM non-secure",
    0x1C5F21B0: "ESP32",
    0xBFDD4EEE: "ESP32-S2",
    0xC47E5767: "ESP32-S3",
    0xD42BA06C: "ESP32-C3",
    0x540DDF62: "ESP32-C6",
    0x68ED2B88: "SAMD21",
    0x55114460: "SAMD51",
    0xADA52840: "nRF52840",
}
# chip -> (families a stock MicroPython image for it may contain, families of which one must be present)
UF2_ACCEPT = {
    "rp2040": ({0xE48BFF56}, {0xE48BFF56}),
    # RP2350 images from pico-sdk >= 2.0 start with one "absolute" block (the RP2350-E10 workaround)
    "rp2350": ({0xE48BFF57, 0xE48BFF58, 0xE48BFF59, 0xE48BFF5B}, {0xE48BFF59, 0xE48BFF5B}),
}
RP_FLASH_BASE = 0x10000000
BOOTSEL_ID = {"rp2040": "RPI-RP2", "rp2350": "RP2350"}       # Board-ID line of INFO_UF2.TXT
BOOTSEL_GLOBS = ("/media/*/*", "/media/*", "/run/media/*/*", "/Volumes/*")

# ---- ESP ------------------------------------------------------------------------------------------------
ESP_IMAGE_MAGIC = 0xE9
PARTITION_TABLE_AT = 0x8000
PARTITION_MAGIC = b"\xAA\x50"
CHIP_TITLES = {"esp32": "ESP32", "esp32s2": "ESP32-S2", "esp32s3": "ESP32-S3", "esp32c3": "ESP32-C3",
               "esp32c6": "ESP32-C6", "esp32c2": "ESP32-C2", "esp32h2": "ESP32-H2", "esp32p4": "ESP32-P4",
               "esp32c5": "ESP32-C5", "esp32c61": "ESP32-C61", "esp8266": "ESP8266",
               "rp2040": "RP2040", "rp2350": "RP2350"}
DEFAULT_BAUD = 460800


def chip_title(chip):
    return CHIP_TITLES.get(chip, chip.upper())


def load_board(name):
    try:
        return boards.load(name)
    except boards.BoardError as e:
        raise RekuError(str(e))


def read_firmware(path):
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise RekuError("firmware file %s not found" % p)
    except OSError as e:
        raise RekuError("cannot read firmware file %s: %s" % (p, e.strerror or e))
    if not data:
        raise RekuError("firmware file %s is empty" % p)
    return data


# ---- image checks ---------------------------------------------------------------------------------------

def uf2_blocks(data, name="image"):
    """Parse a UF2 file: list of dicts (flags, addr, size, block, count, family)."""
    if len(data) % UF2_BLOCK:
        raise RekuError("%s is not a UF2 file (%d bytes is not a multiple of 512)" % (name, len(data)))
    out = []
    for i in range(0, len(data), UF2_BLOCK):
        m0, m1, flags, addr, size, blockno, count, family = struct.unpack_from("<8I", data, i)
        (mend,) = struct.unpack_from("<I", data, i + UF2_BLOCK - 4)
        if (m0, m1, mend) != (UF2_MAGIC0, UF2_MAGIC1, UF2_MAGIC_END):
            raise RekuError("%s is not a UF2 file (bad magic in block %d)" % (name, i // UF2_BLOCK))
        if size > 476 or blockno >= count:
            raise RekuError("%s: UF2 block %d is malformed (payload %d, block %d of %d)"
                            % (name, i // UF2_BLOCK, size, blockno, count))
        out.append({"flags": flags, "addr": addr, "size": size, "block": blockno, "count": count,
                    "family": family if flags & UF2_FLAG_FAMILY else None})
    return out


def family_name(fid):
    if fid is None:
        return "no family ID"
    return FAMILIES.get(fid, "unknown family 0x%08x" % fid)


def check_uf2(profile, data, name="image"):
    """Refuse a UF2 that is not for the board's chip; return a summary of the image."""
    chip = profile["chip"]
    blocks = uf2_blocks(data, name)
    flash = [b for b in blocks if not b["flags"] & UF2_FLAG_NOT_MAIN_FLASH]
    families = sorted({b["family"] for b in flash}, key=lambda f: -1 if f is None else f)
    allowed, needed = UF2_ACCEPT[chip]
    fam_txt = ", ".join(family_name(f) for f in families)
    if None in families:
        raise RekuError("%s has UF2 blocks without a family ID; the %s bootloader needs %s"
                        % (name, chip_title(chip), family_name(min(needed))))
    if 0xE48BFF5A in families and chip == "rp2350":
        raise RekuError("%s is a RISC-V image (family RP2350 RISC-V) but board %s uses the ARM cores "
                        "(native_arch %s): use the ARM build of %s" % (name, profile["name"],
                                                                      profile["native_arch"], profile["mp_board"]))
    wrong = [f for f in families if f not in allowed]
    if wrong or not needed & set(families):
        raise RekuError("%s is a UF2 for %s, but board %s is an %s: refusing to flash it"
                        % (name, fam_txt, profile["name"], chip_title(chip)))
    # count and address checks on the blocks meant for this chip
    main = [b for b in flash if b["family"] in needed]
    counts = {b["count"] for b in main}
    if len(counts) != 1 or sorted(b["block"] for b in main) != list(range(len(main))) or \
            counts != {len(main)}:
        raise RekuError("%s: UF2 blocks are incomplete or out of sequence (%d blocks, numbering says %s)"
                        % (name, len(main), "/".join(str(c) for c in sorted(counts))))
    lo = min(b["addr"] for b in main)
    hi = max(b["addr"] + b["size"] for b in main)
    top = RP_FLASH_BASE + profile["flash_kb"] * 1024
    if lo < RP_FLASH_BASE or hi > top:
        raise RekuError("%s writes 0x%08x..0x%08x, outside the %d KiB flash of board %s (0x%08x..0x%08x)"
                        % (name, lo, hi, profile["flash_kb"], profile["name"], RP_FLASH_BASE, top))
    return {"format": "uf2", "blocks": len(blocks), "families": [family_name(f) for f in families],
            "start": lo, "end": hi, "payload": sum(b["size"] for b in main)}


def _esp_chip_of(data, at):
    """The chip an ESP image header at `at` is built for (esptool's IMAGE_CHIP_ID table)."""
    from esptool.targets import CHIP_DEFS
    if len(data) < at + 24 or data[at] != ESP_IMAGE_MAGIC:
        return None
    chip_id = data[at + 12]
    for name, rom in CHIP_DEFS.items():
        if name != "esp8266" and getattr(rom, "IMAGE_CHIP_ID", None) == chip_id:
            return name
    return "unknown chip id %d" % chip_id


def _esp_image(chip, data, at, what, name):
    """Load the image at `at` with esptool's image tools; check its checksum and digest."""
    from esptool.bin_image import LoadFirmwareImage
    try:
        img = LoadFirmwareImage(chip, data[at:])
    except Exception as e:   # esptool raises FatalError/struct.error/... on a damaged image
        raise RekuError("%s: the %s at 0x%x is not a valid %s image (%s)"
                        % (name, what, at, chip_title(chip), str(e).splitlines()[0] if str(e) else type(e).__name__))
    if img.checksum != img.calculate_checksum():
        raise RekuError("%s: the %s at 0x%x has a bad checksum (damaged file?)" % (name, what, at))
    if getattr(img, "append_digest", False) and getattr(img, "stored_digest", None) is not None \
            and img.stored_digest != img.calc_digest:
        raise RekuError("%s: the %s at 0x%x has a bad SHA-256 digest (damaged file?)" % (name, what, at))
    return img


def _is_app(img):
    return any(img.is_flash_addr(s.addr) for s in img.segments)


def partitions(data, at):
    """Entries of an ESP partition table at `at`: list of (label, type, subtype, offset, size)."""
    out = []
    for i in range(at, min(at + 0xC00, len(data)) - 31, 32):
        entry = data[i:i + 32]
        if entry[:2] != PARTITION_MAGIC:
            break
        _m, ptype, subtype, offset, size, label, _flags = struct.unpack("<2sBBII16sI", entry)
        out.append((label.rstrip(b"\0").decode("ascii", "replace"), ptype, subtype, offset, size))
    return out


def check_esp_bin(profile, data, name="image"):
    """Refuse an ESP .bin that is not for the board's chip or not a full MicroPython firmware image
    (bootloader + partition table + app). Returns the write address and what the image holds."""
    chip = profile["chip"]
    offset = profile["firmware_offset"]
    if data[:4] == struct.pack("<I", UF2_MAGIC0):
        fams = ", ".join(family_name(f) for f in sorted({b["family"] for b in uf2_blocks(data, name)},
                                                         key=lambda f: f or 0))
        raise RekuError("%s is a UF2 file (%s); board %s is flashed with a .bin through esptool"
                        % (name, fams, profile["name"]))
    # where the bootloader is: at the start of the file (written at the board's offset, the layout of
    # micropython.org's downloads), or at `offset` inside a file that starts at flash address 0
    if data[0] == ESP_IMAGE_MAGIC:
        boot_at, write_addr = 0, offset
    elif offset and len(data) > offset and data[offset] == ESP_IMAGE_MAGIC and \
            data[:offset] == b"\xff" * offset:
        boot_at, write_addr = offset, 0
    else:
        # a whole-flash image of a chip that boots from 0x1000 (ESP32, ESP32-S2) offered to another chip?
        elsewhere = _esp_chip_of(data, 0x1000) if data[:0x1000] == b"\xff" * 0x1000 else None
        if elsewhere in CHIP_TITLES and elsewhere != chip:
            raise RekuError("%s is an %s image (bootloader at 0x1000), but board %s is an %s: refusing to "
                            "flash it" % (name, chip_title(elsewhere), profile["name"], chip_title(chip)))
        raise RekuError("%s is not an ESP firmware image (no image header at 0x0%s)"
                        % (name, " or 0x%x" % offset if offset else ""))
    found = _esp_chip_of(data, boot_at)
    if found != chip:
        raise RekuError("%s is an %s image, but board %s is an %s: refusing to flash it"
                        % (name, chip_title(found) if found in CHIP_TITLES else found, profile["name"],
                           chip_title(chip)))
    boot = _esp_image(chip, data, boot_at, "bootloader", name)
    if _is_app(boot):
        raise RekuError("%s is an application image, not a full firmware image: use the .bin from "
                        "micropython.org/download/%s%s (bootloader, partition table and app), written at 0x%x"
                        % (name, profile["mp_board"], (", variant " + profile["mp_variant"]) if
                           profile.get("mp_variant") else "", offset))
    pt_at = PARTITION_TABLE_AT - write_addr
    table = partitions(data, pt_at)
    if not table:
        raise RekuError("%s has no partition table at flash address 0x%x: not a full MicroPython firmware "
                        "image for a board flashed at 0x%x" % (name, PARTITION_TABLE_AT, offset))
    apps = [p for p in table if p[1] == 0]
    if not apps:
        raise RekuError("%s: the partition table has no app partition" % name)
    app_label, _t, _s, app_addr, app_size = apps[0]
    app_at = app_addr - write_addr
    app_chip = _esp_chip_of(data, app_at)
    if app_chip is None:
        raise RekuError("%s: no app image at 0x%x (partition %r); the file ends at 0x%x"
                        % (name, app_addr, app_label, write_addr + len(data)))
    if app_chip != chip:
        raise RekuError("%s: the app at 0x%x is an %s image, but board %s is an %s: refusing to flash it"
                        % (name, app_addr, chip_title(app_chip) if app_chip in CHIP_TITLES else app_chip,
                           profile["name"], chip_title(chip)))
    app = _esp_image(chip, data, app_at, "app", name)
    end = write_addr + len(data)
    if end > profile["flash_kb"] * 1024:
        raise RekuError("%s ends at 0x%x, beyond the %d KiB flash of board %s"
                        % (name, end, profile["flash_kb"], profile["name"]))
    return {"format": "bin", "chip": chip, "write_addr": write_addr, "size": len(data), "end": end,
            "bootloader_at": write_addr + boot_at, "partition_table_at": PARTITION_TABLE_AT,
            "app": {"label": app_label, "addr": app_addr, "size": app_size, "segments": len(app.segments)},
            "partitions": [p[0] for p in table]}


def check_image(profile, data, name="image"):
    if profile["firmware_format"] == "uf2":
        return check_uf2(profile, data, name)
    return check_esp_bin(profile, data, name)


# ---- plans ----------------------------------------------------------------------------------------------

def plan_esp(profile, image, firmware, port, erase=False, baud=DEFAULT_BAUD):
    """The esptool operations, in order, as dicts (what --dry-run prints and run_esp executes)."""
    ops = [{"op": "connect", "port": port, "baud": baud, "expect_chip": profile["chip"]},
           {"op": "check_flash_size", "min_bytes": image["end"]}]
    if erase:
        ops.append({"op": "erase_flash"})
    ops.append({"op": "write_flash", "addr": image["write_addr"], "file": str(firmware), "size": image["size"]})
    ops.append({"op": "verify_flash", "addr": image["write_addr"], "file": str(firmware), "size": image["size"]})
    ops.append({"op": "hard_reset"})
    return ops


def plan_rp(profile, image, firmware, port=None, erase=False, drive=None, picotool=None):
    ops = []
    if erase:
        ops.append({"op": "picotool_erase", "tool": picotool})
    if drive:
        ops.append({"op": "copy_uf2", "drive": str(drive), "file": str(firmware), "size": image["blocks"] * 512})
    elif picotool:
        ops.append({"op": "picotool_load", "tool": picotool, "file": str(firmware)})
    else:
        if port:
            ops.append({"op": "enter_bootsel", "port": port})
        ops.append({"op": "wait_bootsel", "board_id": BOOTSEL_ID[profile["chip"]]})
        ops.append({"op": "copy_uf2", "drive": None, "file": str(firmware), "size": image["blocks"] * 512})
    return ops


def describe(op):
    o = op["op"]
    if o == "connect":
        return "connect to %s at %d baud, detect the chip, expect %s (refuse any other)" % (
            op["port"], op["baud"], chip_title(op["expect_chip"]))
    if o == "check_flash_size":
        return "read the flash size, refuse if under %d bytes" % op["min_bytes"]
    if o == "erase_flash":
        return "erase the whole flash (filesystem included)"
    if o == "write_flash":
        return "write %s (%d bytes) at 0x%x" % (op["file"], op["size"], op["addr"])
    if o == "verify_flash":
        return "verify 0x%x..0x%x against %s" % (op["addr"], op["addr"] + op["size"], op["file"])
    if o == "hard_reset":
        return "hard reset the chip into the new firmware"
    if o == "picotool_erase":
        return "erase the whole flash with %s erase" % (op["tool"] or "picotool")
    if o == "picotool_load":
        return "load %s with %s load -v -x (write, verify, run)" % (op["file"], op["tool"])
    if o == "enter_bootsel":
        return "reboot the MicroPython board on %s into BOOTSEL (machine.bootloader())" % op["port"]
    if o == "wait_bootsel":
        return "wait for a BOOTSEL drive with Board-ID %s" % op["board_id"]
    if o == "copy_uf2":
        if op["drive"] is None:
            return "copy %s (%d bytes) onto that drive as %s; the board then reboots into it" % (
                op["file"], op["size"], Path(op["file"]).name)
        return "copy %s (%d bytes) to %s/%s; the board then reboots into it" % (
            op["file"], op["size"], op["drive"], Path(op["file"]).name)
    return o


def summary(profile, image, firmware):
    if image["format"] == "uf2":
        return ("board %s (%s), firmware %s: UF2, %d blocks, %s, %d bytes at 0x%08x..0x%08x"
                % (profile["name"], chip_title(profile["chip"]), firmware, image["blocks"],
                   " + ".join(image["families"]), image["payload"], image["start"], image["end"]))
    return ("board %s (%s), firmware %s: %s image, %d bytes at 0x%x: bootloader at 0x%x, partition table at "
            "0x%x, app %r at 0x%x" % (profile["name"], chip_title(profile["chip"]), firmware,
                                      chip_title(image["chip"]), image["size"], image["write_addr"],
                                      image["bootloader_at"], image["partition_table_at"], image["app"]["label"],
                                      image["app"]["addr"]))


# ---- BOOTSEL --------------------------------------------------------------------------------------------

def bootsel_info(drive):
    """The Board-ID of a UF2 bootloader drive (from INFO_UF2.TXT), or None."""
    try:
        text = (Path(drive) / "INFO_UF2.TXT").read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Board-ID:"):
            return line.split(":", 1)[1].strip()
    return ""


def bootsel_candidates():
    override = os.environ.get("REKU_BOOTSEL_DIR")
    if override:
        return [Path(override)], "REKU_BOOTSEL_DIR=%s" % override
    seen = []
    for pattern in BOOTSEL_GLOBS:
        for d in sorted(glob.glob(pattern)):
            if os.path.isdir(d) and Path(d) not in seen:
                seen.append(Path(d))
    return seen, ", ".join(BOOTSEL_GLOBS)


def find_bootsel(profile):
    """The BOOTSEL drive for the board's chip: a path, or None when none is mounted. A drive of the other
    RP chip, or several drives, is an error."""
    want = BOOTSEL_ID[profile["chip"]]
    cands, _where = bootsel_candidates()
    mine, other = [], []
    for d in cands:
        bid = bootsel_info(d)
        if bid is None:
            continue
        (mine if bid == want else other).append((d, bid))
    if len(mine) > 1:
        raise RekuError("several %s BOOTSEL drives are mounted (%s): leave one, or set REKU_BOOTSEL_DIR"
                        % (want, ", ".join(str(d) for d, _ in mine)))
    if mine:
        return mine[0][0]
    rp_other = [(d, b) for d, b in other if b in BOOTSEL_ID.values()]
    if rp_other:
        d, bid = rp_other[0]
        other_chip = [c for c, b in BOOTSEL_ID.items() if b == bid][0]
        raise RekuError("the BOOTSEL drive at %s is an %s (Board-ID %s), but board %s is an %s"
                        % (d, chip_title(other_chip), bid, profile["name"], chip_title(profile["chip"])))
    return None


def bootsel_help(profile, port):
    where = bootsel_candidates()[1]
    lines = ["No %s BOOTSEL drive found (looked in %s)." % (BOOTSEL_ID[profile["chip"]], where),
             "Put the board in BOOTSEL mode: hold its BOOTSEL button while plugging it in,"]
    lines.append("or, if it runs MicroPython: mpremote connect %s bootloader" % (port or "PORT"))
    lines.append("then run this command again (or give --port so reku reboots it into BOOTSEL itself).")
    return lines


def enter_bootsel(port):
    """Reboot a running MicroPython board into its ROM bootloader through the raw REPL."""
    try:
        from mpremote.transport_serial import SerialTransport
        t = SerialTransport(port, baudrate=115200)
    except Exception as e:
        raise RekuError("cannot open serial port %s: %s" % (port, _first_line(e)))
    try:
        t.enter_raw_repl()
        t.exec_raw_no_follow("import machine\nmachine.bootloader()")
    except Exception as e:
        raise RekuError("could not reboot the board on %s into BOOTSEL: %s" % (port, _first_line(e)))
    finally:
        try:
            t.close()
        except Exception:
            pass


def wait_bootsel(profile, timeout):
    end = time.monotonic() + timeout
    while True:
        d = find_bootsel(profile)
        if d is not None or time.monotonic() > end:
            return d
        time.sleep(0.25)


def copy_uf2(firmware, drive, data):
    dest = Path(drive) / Path(firmware).name
    total, step = len(data), 64 * 1024
    print("copying %s to %s" % (Path(firmware).name, drive), flush=True)
    try:
        with open(dest, "wb") as f:
            done, shown = 0, -1
            while done < total:
                f.write(data[done:done + step])
                done = min(total, done + step)
                pct = done * 100 // total
                if pct // 25 != shown // 25 or done == total:
                    print("  %3d%%  %d/%d bytes" % (pct, done, total), flush=True)
                    shown = pct
            f.flush()
            try:
                os.fsync(f.fileno())
            except OSError:
                pass    # the drive may vanish as the board reboots: every byte was handed over already
    except OSError as e:
        raise RekuError("copying to %s failed: %s" % (dest, e.strerror or e))
    return dest


# ---- execution ------------------------------------------------------------------------------------------

def _first_line(e):
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


def _norm_chip(name):
    return name.lower().replace("-", "").split("(")[0].strip()


def run_esp(profile, ops, data):
    import esptool.cmds as et
    from esptool.util import FatalError

    connect = ops[0]
    port = connect["port"]
    if os.name == "posix" and port.startswith("/") and not os.path.exists(port):
        raise RekuError("cannot open serial port %s: no such device" % port)
    try:
        esp = et.detect_chip(port, 115200, "default-reset")
    except FatalError as e:
        msg = _first_line(e)
        if "Could not open" in msg:
            raise RekuError("cannot open serial port %s: %s" % (port, msg))
        raise RekuError("no ESP chip answered on %s: %s" % (port, msg))
    try:
        found = _norm_chip(esp.CHIP_NAME)
        if found != profile["chip"]:
            raise RekuError("the chip on %s is an %s, but board %s is an %s: nothing written"
                            % (port, esp.CHIP_NAME, profile["name"], chip_title(profile["chip"])))
        print("detected %s on %s" % (esp.CHIP_NAME, port), flush=True)
        esp = et.run_stub(esp)
        if connect["baud"] != 115200:
            esp.change_baud(connect["baud"])
        et.attach_flash(esp)
        for op in ops[1:]:
            o = op["op"]
            if o == "check_flash_size":
                size = et.detect_flash_size(esp)
                if size is not None:
                    from esptool.util import flash_size_bytes
                    nbytes = flash_size_bytes(size)
                    if nbytes < op["min_bytes"]:
                        raise RekuError("the flash on %s is %s, the image needs %d bytes: nothing written"
                                        % (port, size, op["min_bytes"]))
                    print("flash size %s" % size, flush=True)
            elif o == "erase_flash":
                print("erasing the whole flash", flush=True)
                et.erase_flash(esp)
            elif o == "write_flash":
                print("writing %d bytes at 0x%x" % (op["size"], op["addr"]), flush=True)
                et.write_flash(esp, [(op["addr"], data)])
            elif o == "verify_flash":
                print("verifying", flush=True)
                et.verify_flash(esp, [(op["addr"], data)])
            elif o == "hard_reset":
                et.reset_chip(esp, "hard-reset")
    except FatalError as e:
        raise RekuError("esptool on %s: %s" % (port, _first_line(e)))
    finally:
        try:
            esp._port.close()
        except Exception:
            pass
    print("done: %s flashed with %s" % (profile["name"], ops[-2]["file"] if len(ops) > 1 else ""))


def run_rp(profile, ops, data, firmware, port, wait_s):
    for op in ops:
        o = op["op"]
        if o == "picotool_erase":
            if not op["tool"]:
                raise RekuError("--erase on %s needs picotool (or copy a flash_nuke.uf2 first)" % profile["chip"])
            _run_tool([op["tool"], "erase", "-a"])
        elif o == "picotool_load":
            _run_tool([op["tool"], "load", "-v", "-x", str(firmware)])
        elif o == "enter_bootsel":
            print("rebooting the board on %s into BOOTSEL" % op["port"], flush=True)
            enter_bootsel(op["port"])
        elif o == "wait_bootsel":
            drive = wait_bootsel(profile, wait_s)
            if drive is None:
                for line in bootsel_help(profile, port):
                    print(line)
                raise RekuError("no %s BOOTSEL drive found" % op["board_id"])
            print("found BOOTSEL drive %s" % drive, flush=True)
        elif o == "copy_uf2":
            drive = op["drive"] or find_bootsel(profile)
            dest = copy_uf2(firmware, drive, data)
            print("done: copied to %s; the board reboots into MicroPython" % dest)


def find_picotool():
    """picotool when installed; REKU_PICOTOOL names another one, or (set empty) turns it off."""
    env = os.environ.get("REKU_PICOTOOL")
    if env is not None:
        return env or None
    return shutil.which("picotool")


def _run_tool(cmd):
    print("running: %s" % " ".join(cmd), flush=True)
    r = subprocess.run(cmd)
    if r.returncode:
        raise RekuError("%s failed (exit %d)" % (" ".join(cmd[:2]), r.returncode))


# ---- CLI ------------------------------------------------------------------------------------------------

def configure(p):
    p.add_argument("--board", required=True, help="board profile name from hw/boards (or a .json path)")
    p.add_argument("--port", help="serial port (ESP: required; RP2: optional, to reboot a running board into BOOTSEL)")
    p.add_argument("--firmware", required=True, help="MicroPython firmware: .bin for ESP32 boards, .uf2 for RP2")
    p.add_argument("--dry-run", action="store_true", help="print exactly what would be done and touch nothing")
    p.add_argument("--erase", action="store_true", help="erase the whole flash first (the filesystem too)")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="ESP flashing baud rate (default %d)" % DEFAULT_BAUD)
    p.add_argument("--wait", type=float, default=15.0, help="RP2: seconds to wait for the BOOTSEL drive (default 15)")


def run(args):
    profile = load_board(args.board)
    firmware = Path(args.firmware)
    data = read_firmware(firmware)
    image = check_image(profile, data, firmware.name)
    if profile["firmware_format"] == "bin":
        if not args.port:
            raise RekuError("--port is required for board %s (the serial port of its USB-UART)" % profile["name"])
        ops = plan_esp(profile, image, firmware, args.port, args.erase, args.baud)
    else:
        drive = find_bootsel(profile)
        picotool = find_picotool()
        if args.erase and not picotool:
            raise RekuError("--erase on %s needs picotool (or copy a flash_nuke.uf2 first)" % chip_title(profile["chip"]))
        ops = plan_rp(profile, image, firmware, args.port, args.erase, drive, picotool)
    print(summary(profile, image, firmware))
    for i, op in enumerate(ops, 1):
        print("%d. %s" % (i, describe(op)))
    sys.stdout.flush()
    if args.dry_run:
        print("dry run: nothing written")
        return 0
    if profile["firmware_format"] == "bin":
        run_esp(profile, ops, data)
    else:
        run_rp(profile, ops, data, firmware, args.port, args.wait)
    return 0
