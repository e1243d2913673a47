"""`reku flash`: image checks and the exact operations, on real MicroPython-style images built here with
esptool's own tools (elf2image on ELF files written by the test, merge-bin of bootloader + partition table
+ app, merge-bin --format uf2), and the UF2 path against a directory that stands in for the BOOTSEL drive."""
import hashlib
import os
import struct
import subprocess
import sys

import esptool.cmds as et
import pytest
from esptool.bin_image import LoadFirmwareImage

from reku import flash
from reku.errors import RekuError
from rkfw import boards

REKU = [sys.executable, "-m", "reku.cli"]
ESP_BOARDS = {"esp32-devkitc": "esp32", "esp32-s3-devkitc": "esp32s3", "xiao-esp32c3": "esp32c3"}
# chip -> IRAM, DRAM, DROM (flash-mapped data), IROM (flash-mapped code), ELF machine (Xtensa 0x5E, RISC-V 0xF3)
MEMORY = {"esp32": (0x40080000, 0x3FFB0000, 0x3F400020, 0x400D0020, 0x5E),
          "esp32s3": (0x40378000, 0x3FC88000, 0x3C000020, 0x42000020, 0x5E),
          "esp32c3": (0x40380000, 0x3FC80000, 0x3C000020, 0x42000020, 0xF3)}
INFO_RP2040 = "UF2 Bootloader v3.0\r\nModel: Raspberry Pi RP2\r\nBoard-ID: RPI-RP2\r\n"
INFO_RP2350 = "UF2 Bootloader v1.0\r\nModel: Raspberry Pi RP2350\r\nBoard-ID: RP2350\r\n"


def reku(*args, env=None):
    e = dict(os.environ)
    e["REKU_PICOTOOL"] = ""          # the UF2 path under test, whether or not picotool is installed here
    e.update(env or {})
    return subprocess.run(REKU + list(args), capture_output=True, text=True, timeout=120, env=e)


# ---- building images with esptool ------------------------------------------------------------------------

def make_elf(sections, entry, machine):
    """A minimal ELF32 (little endian, section headers only): what elf2image reads."""
    names = b"\0" + b"".join(n.encode() + b"\0" for n, _a, _d in sections) + b".shstrtab\0"
    body, offsets = b"", []
    for _n, _a, d in sections:
        offsets.append(0x34 + len(body))
        body += d + b"\0" * (-len(d) % 4)
    strtab_at = 0x34 + len(body)
    body += names + b"\0" * (-len(names) % 4)
    shoff = 0x34 + len(body)
    headers, name_at = [b"\0" * 40], 1
    for (n, addr, d), off in zip(sections, offsets):
        flags = 0x2 | (0x4 if "text" in n else 0x1)            # ALLOC + EXEC or WRITE
        headers.append(struct.pack("<10I", name_at, 1, flags, addr, off, len(d), 0, 0, 4, 0))
        name_at += len(n) + 1
    headers.append(struct.pack("<10I", name_at, 3, 0, 0, strtab_at, len(names), 0, 0, 1, 0))
    ident = b"\x7fELF\x01\x01\x01" + b"\0" * 9
    head = struct.pack("<16sHHIIIIIHHHHHH", ident, 2, machine, 1, entry, 0, shoff, 0, 0x34, 0x20, 0, 40,
                       len(headers), len(headers) - 1)
    return head + body + b"".join(headers)


def bootloader(chip):
    iram, dram, _drom, _irom, machine = MEMORY[chip]
    elf = make_elf([(".iram0.text", iram, os.urandom(96)), (".dram0.data", dram, os.urandom(48))], iram, machine)
    return et.elf2image(elf, chip, output=None, flash_mode="dio", flash_size="4MB")


def app(chip):
    iram, dram, drom, irom, machine = MEMORY[chip]
    elf = make_elf([(".flash.rodata", drom, os.urandom(512)), (".flash.text", irom, os.urandom(1024)),
                    (".iram0.text", iram, os.urandom(128)), (".dram0.data", dram, os.urandom(64))], iram, machine)
    return et.elf2image(elf, chip, output=None, flash_mode="dio", flash_size="4MB")


def partition_table(entries):
    """ESP-IDF partition table binary (gen_esp32part.py format): 32-byte entries, MD5 entry, 0xFF fill."""
    out = b""
    for label, ptype, subtype, offset, size in entries:
        out += struct.pack("<2sBBII16sI", b"\xAA\x50", ptype, subtype, offset, size,
                           label.encode().ljust(16, b"\0"), 0)
    out += b"\xEB\xEB" + b"\xFF" * 14 + hashlib.md5(out).digest()
    return out + b"\xFF" * (0xC00 - len(out))


MP_PARTITIONS = [("nvs", 1, 2, 0x9000, 0x6000), ("phy_init", 1, 1, 0xF000, 0x1000),
                 ("factory", 0, 0, 0x10000, 0x1F0000)]


def micropython_bin(chip, target_offset=None):
    """A firmware.bin laid out like micropython.org's: bootloader at the chip's offset, partition table at
    0x8000, app at 0x10000, merged by esptool merge-bin; the file starts at the bootloader unless
    target_offset says otherwise (0: a whole-flash image)."""
    boot_at = 0x1000 if chip in ("esp32", "esp32s2") else 0
    start = boot_at if target_offset is None else target_offset
    return et.merge_bin([(boot_at, bootloader(chip)), (0x8000, partition_table(MP_PARTITIONS)),
                         (0x10000, app(chip))], chip, output=None, format="raw", target_offset=start)


def flash_after(ops, data, size):
    """Simulated flash after the plan's write operations: 0xFF, then each write at its address."""
    mem = bytearray(b"\xFF" * size)
    for op in ops:
        if op["op"] == "write_flash":
            mem[op["addr"]:op["addr"] + len(data)] = data
    return bytes(mem)


@pytest.fixture(scope="module")
def esp_images():
    return {chip: micropython_bin(chip) for chip in MEMORY}


# ---- ESP: images, plans, refusals ------------------------------------------------------------------------

@pytest.mark.parametrize("name,chip", sorted(ESP_BOARDS.items()))
def test_esp_plan_writes_at_the_profile_offset_and_the_flash_boots(esp_images, name, chip, tmp_path):
    profile = boards.load(name)
    data = esp_images[chip]
    image = flash.check_esp_bin(profile, data, "firmware.bin")
    ops = flash.plan_esp(profile, image, tmp_path / "firmware.bin", "/dev/ttyUSB0")
    assert [op["op"] for op in ops] == ["connect", "check_flash_size", "write_flash", "verify_flash", "hard_reset"]
    assert ops[0]["expect_chip"] == chip
    write = ops[2]
    assert write["addr"] == profile["firmware_offset"] == {"esp32": 0x1000}.get(chip, 0)
    assert ops[3]["addr"] == write["addr"] and write["size"] == ops[3]["size"] == len(data)
    # what the chip's ROM and second-stage bootloader will find, read back with esptool's image tools
    mem = flash_after(ops, data, profile["flash_kb"] * 1024)
    boot = LoadFirmwareImage(chip, mem[profile["firmware_offset"]:])
    assert boot.chip_id == et.CHIP_DEFS[chip].IMAGE_CHIP_ID
    assert not any(boot.is_flash_addr(s.addr) for s in boot.segments)
    assert flash.partitions(mem, 0x8000)[2] == ("factory", 0, 0, 0x10000, 0x1F0000)
    appimg = LoadFirmwareImage(chip, mem[0x10000:])
    assert appimg.chip_id == boot.chip_id and any(appimg.is_flash_addr(s.addr) for s in appimg.segments)


@pytest.mark.parametrize("name,chip", sorted(ESP_BOARDS.items()))
def test_esp_dry_run_prints_exactly_the_operations(esp_images, name, chip, tmp_path):
    fw = tmp_path / "firmware.bin"
    fw.write_bytes(esp_images[chip])
    off = boards.load(name)["firmware_offset"]
    r = reku("flash", "--board", name, "--port", "/dev/ttyUSB0", "--firmware", str(fw), "--dry-run", "--erase")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("board %s (%s), firmware %s: %s image, %d bytes at 0x%x"
                               % (name, flash.chip_title(chip), fw, flash.chip_title(chip), fw.stat().st_size, off))
    assert lines[1:] == [
        "1. connect to /dev/ttyUSB0 at 460800 baud, detect the chip, expect %s (refuse any other)"
        % flash.chip_title(chip),
        "2. read the flash size, refuse if under %d bytes" % (off + fw.stat().st_size),
        "3. erase the whole flash (filesystem included)",
        "4. write %s (%d bytes) at 0x%x" % (fw, fw.stat().st_size, off),
        "5. verify 0x%x..0x%x against %s" % (off, off + fw.stat().st_size, fw),
        "6. hard reset the chip into the new firmware",
        "dry run: nothing written",
    ]
    r = reku("flash", "--board", name, "--port", "/dev/ttyUSB0", "--firmware", str(fw), "--dry-run")
    assert "erase" not in r.stdout


def test_whole_flash_image_of_an_esp32_is_written_at_zero(tmp_path):
    data = micropython_bin("esp32", target_offset=0)
    assert data[:0x1000] == b"\xFF" * 0x1000
    profile = boards.load("esp32-devkitc")
    image = flash.check_esp_bin(profile, data, "full.bin")
    assert image["write_addr"] == 0 and image["bootloader_at"] == 0x1000
    ops = flash.plan_esp(profile, image, tmp_path / "full.bin", "/dev/ttyUSB0")
    mem = flash_after(ops, data, 4 << 20)
    assert LoadFirmwareImage("esp32", mem[0x1000:]).chip_id == 0


@pytest.mark.parametrize("name,chip", sorted(ESP_BOARDS.items()))
def test_wrong_chip_image_is_refused_with_one_line(esp_images, name, chip, tmp_path):
    for other, data in esp_images.items():
        if other == chip:
            continue
        fw = tmp_path / ("%s.bin" % other)
        fw.write_bytes(data)
        r = reku("flash", "--board", name, "--port", "/dev/ttyUSB0", "--firmware", str(fw), "--dry-run")
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr.count("\n") == 1
        assert r.stderr.strip() == ("reku flash: error: %s.bin is an %s image, but board %s is an %s: "
                                    "refusing to flash it" % (other, flash.chip_title(other), name,
                                                              flash.chip_title(chip)))
    # an ESP32 whole-flash image (bootloader at 0x1000) is recognised as ESP32 on the other chips too
    if chip != "esp32":
        with pytest.raises(RekuError, match="is an ESP32 image \\(bootloader at 0x1000\\)"):
            flash.check_esp_bin(boards.load(name), micropython_bin("esp32", target_offset=0), "x.bin")


def test_app_with_another_chip_inside_a_good_bootloader_is_refused():
    boot = bootloader("esp32s3")
    data = et.merge_bin([(0, boot), (0x8000, partition_table(MP_PARTITIONS)), (0x10000, app("esp32c3"))],
                        "esp32s3", output=None, format="raw")
    with pytest.raises(RekuError, match="the app at 0x10000 is an ESP32-C3 image, but board esp32-s3-devkitc"):
        flash.check_esp_bin(boards.load("esp32-s3-devkitc"), data, "mixed.bin")


def test_app_only_image_is_refused():
    with pytest.raises(RekuError, match="is an application image, not a full firmware image: use the .bin from "
                                        "micropython.org/download/ESP32_GENERIC_C3"):
        flash.check_esp_bin(boards.load("xiao-esp32c3"), app("esp32c3"), "micropython.bin")


def test_damaged_image_is_refused(esp_images):
    data = bytearray(esp_images["esp32s3"])
    data[0x10000 + 0x40] ^= 0xFF           # inside the app's first segment
    with pytest.raises(RekuError, match="the app at 0x10000 has a bad (checksum|SHA-256 digest)"):
        flash.check_esp_bin(boards.load("esp32-s3-devkitc"), bytes(data), "bad.bin")


def test_missing_partition_table_and_oversized_image_are_refused(esp_images):
    data = bytearray(esp_images["esp32c3"])
    data[0x8000:0x8002] = b"\xFF\xFF"
    with pytest.raises(RekuError, match="has no partition table at flash address 0x8000"):
        flash.check_esp_bin(boards.load("xiao-esp32c3"), bytes(data), "nopt.bin")
    big = esp_images["esp32c3"] + b"\xFF" * (4 << 20)
    with pytest.raises(RekuError, match="beyond the 4096 KiB flash of board xiao-esp32c3"):
        flash.check_esp_bin(boards.load("xiao-esp32c3"), big, "big.bin")


def test_not_an_image_and_uf2_for_esp_are_refused(tmp_path):
    with pytest.raises(RekuError, match="is not an ESP firmware image"):
        flash.check_esp_bin(boards.load("esp32-devkitc"), b"hello world" * 100, "x.bin")
    out = tmp_path / "s3.uf2"
    et.merge_bin([(0, bootloader("esp32s3"))], "esp32s3", output=str(out), format="uf2")
    uf2 = out.read_bytes()
    with pytest.raises(RekuError, match="is a UF2 file \\(ESP32-S3\\); board esp32-s3-devkitc is flashed "
                                        "with a .bin through esptool"):
        flash.check_esp_bin(boards.load("esp32-s3-devkitc"), uf2, "s3.uf2")


def test_serial_port_that_does_not_exist_is_one_clear_line(esp_images, tmp_path):
    fw = tmp_path / "firmware.bin"
    fw.write_bytes(esp_images["esp32"])
    r = reku("flash", "--board", "esp32-devkitc", "--port", "/dev/does-not-exist", "--firmware", str(fw))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("reku flash: error: cannot open serial port /dev/does-not-exist")


def test_esp_needs_a_port_and_a_firmware_file(esp_images, tmp_path):
    fw = tmp_path / "firmware.bin"
    fw.write_bytes(esp_images["esp32"])
    r = reku("flash", "--board", "esp32-devkitc", "--firmware", str(fw))
    assert r.returncode == 1 and "--port is required for board esp32-devkitc" in r.stderr
    r = reku("flash", "--board", "esp32-devkitc", "--port", "/dev/ttyUSB0", "--firmware", str(tmp_path / "no.bin"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "no.bin not found" in r.stderr
    r = reku("flash", "--board", "esp99", "--port", "/dev/ttyUSB0", "--firmware", str(fw))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "unknown board 'esp99'" in r.stderr


# ---- UF2 ------------------------------------------------------------------------------------------------

def uf2(payload, family, base=0x10000000, extra_first=None):
    """Encode a UF2 (github.com/microsoft/uf2): 256-byte payloads, family ID flag; extra_first is one block
    of another family placed first (as pico-sdk does with the RP2350 'absolute' block)."""
    chunks = [payload[i:i + 256] for i in range(0, len(payload), 256)]
    blocks = []
    if extra_first is not None:
        fam, addr = extra_first
        blocks.append(struct.pack("<8I", 0x0A324655, 0x9E5D5157, 0x2000, addr, 256, 0, 1, fam)
                      + b"\xEF" * 256 + b"\0" * 220 + struct.pack("<I", 0x0AB16F30))
    for i, c in enumerate(chunks):
        blocks.append(struct.pack("<8I", 0x0A324655, 0x9E5D5157, 0x2000, base + 256 * i, 256, i, len(chunks), family)
                      + c.ljust(256, b"\0") + b"\0" * 220 + struct.pack("<I", 0x0AB16F30))
    return b"".join(blocks)


RP2040_UF2 = uf2(os.urandom(40000), 0xE48BFF56)
RP2350_UF2 = uf2(os.urandom(40000), 0xE48BFF59, extra_first=(0xE48BFF57, 0x10FFFF00))


def bootsel_dir(tmp_path, info):
    d = tmp_path / "RPI-RP2"
    d.mkdir()
    (d / "INFO_UF2.TXT").write_text(info)
    (d / "INDEX.HTM").write_text("<html></html>")
    return d


@pytest.mark.parametrize("name,data,info", [("pico", RP2040_UF2, INFO_RP2040), ("pico2", RP2350_UF2, INFO_RP2350)],
                         ids=["pico", "pico2"])
def test_uf2_is_copied_onto_the_bootsel_drive(tmp_path, name, data, info):
    drive = bootsel_dir(tmp_path, info)
    fw = tmp_path / "RPI_PICO-v1.29.0.uf2"
    fw.write_bytes(data)
    r = reku("flash", "--board", name, "--firmware", str(fw), env={"REKU_BOOTSEL_DIR": str(drive)})
    assert r.returncode == 0, r.stderr
    assert (drive / fw.name).read_bytes() == data
    assert "1. copy %s (%d bytes) to %s/%s" % (fw, len(data), drive, fw.name) in r.stdout
    assert "100%%  %d/%d bytes" % (len(data), len(data)) in r.stdout


def test_uf2_dry_run_touches_nothing(tmp_path):
    drive = bootsel_dir(tmp_path, INFO_RP2040)
    before = sorted(p.name for p in drive.iterdir())
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(RP2040_UF2)
    r = reku("flash", "--board", "pico", "--firmware", str(fw), "--dry-run", env={"REKU_BOOTSEL_DIR": str(drive)})
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in drive.iterdir()) == before
    blocks = len(RP2040_UF2) // 512
    assert r.stdout.splitlines() == [
        "board pico (RP2040), firmware %s: UF2, %d blocks, RP2040, %d bytes at 0x10000000..0x%08x"
        % (fw, blocks, blocks * 256, 0x10000000 + blocks * 256),
        "1. copy %s (%d bytes) to %s/fw.uf2; the board then reboots into it" % (fw, len(RP2040_UF2), drive),
        "dry run: nothing written",
    ]


@pytest.mark.parametrize("name,data,message", [
    ("pico", RP2350_UF2, "is a UF2 for RP2XXX absolute, RP2350 ARM secure, but board pico is an RP2040"),
    ("pico2", RP2040_UF2, "is a UF2 for RP2040, but board pico2 is an RP2350"),
    ("pico2", uf2(b"\1" * 3000, 0xE48BFF5A), "is a RISC-V image (family RP2350 RISC-V) but board pico2 uses the "
                                             "ARM cores"),
    ("pico", uf2(b"\1" * 3000, 0xADA52840), "is a UF2 for nRF52840, but board pico is an RP2040"),
], ids=["rp2350-on-pico", "rp2040-on-pico2", "riscv-on-pico2", "nrf-on-pico"])
def test_uf2_for_another_chip_is_refused(tmp_path, name, data, message):
    drive = bootsel_dir(tmp_path, INFO_RP2040 if name == "pico" else INFO_RP2350)
    fw = tmp_path / "other.uf2"
    fw.write_bytes(data)
    r = reku("flash", "--board", name, "--firmware", str(fw), env={"REKU_BOOTSEL_DIR": str(drive)})
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert message in r.stderr
    assert not (drive / "other.uf2").exists()


def test_esp_uf2_made_by_esptool_is_refused_for_a_pico(tmp_path):
    out = tmp_path / "s3.uf2"
    et.merge_bin([(0, bootloader("esp32s3"))], "esp32s3", output=str(out), format="uf2")
    data = out.read_bytes()
    with pytest.raises(RekuError, match="is a UF2 for ESP32-S3, but board pico is an RP2040"):
        flash.check_uf2(boards.load("pico"), data, "s3.uf2")


def test_malformed_and_oversized_uf2_are_refused():
    with pytest.raises(RekuError, match="not a multiple of 512"):
        flash.check_uf2(boards.load("pico"), RP2040_UF2[:-1], "cut.uf2")
    with pytest.raises(RekuError, match="incomplete or out of sequence"):
        flash.check_uf2(boards.load("pico"), RP2040_UF2[512:], "missing-first.uf2")
    big = uf2(b"\0" * 256, 0xE48BFF56, base=0x10000000 + (2 << 20))
    with pytest.raises(RekuError, match="outside the 2048 KiB flash of board pico"):
        flash.check_uf2(boards.load("pico"), big, "big.uf2")


def test_bootsel_drive_of_the_other_chip_is_refused(tmp_path):
    drive = bootsel_dir(tmp_path, INFO_RP2350)
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(RP2040_UF2)
    r = reku("flash", "--board", "pico", "--firmware", str(fw), env={"REKU_BOOTSEL_DIR": str(drive)})
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "the BOOTSEL drive at %s is an RP2350 (Board-ID RP2350), but board pico is an RP2040" % drive in r.stderr


def test_no_bootsel_drive_prints_instructions(tmp_path):
    empty = tmp_path / "nothing"
    empty.mkdir()
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(RP2040_UF2)
    r = reku("flash", "--board", "pico", "--firmware", str(fw), "--wait", "0", env={"REKU_BOOTSEL_DIR": str(empty)})
    assert r.returncode == 1
    assert r.stderr.strip() == "reku flash: error: no RPI-RP2 BOOTSEL drive found"
    assert "hold its BOOTSEL button while plugging it in" in r.stdout
    assert "mpremote connect PORT bootloader" in r.stdout


def test_rp2_port_that_does_not_exist_is_one_clear_line(tmp_path):
    empty = tmp_path / "nothing"
    empty.mkdir()
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(RP2040_UF2)
    r = reku("flash", "--board", "pico", "--port", "/dev/does-not-exist", "--firmware", str(fw), "--wait", "0",
             env={"REKU_BOOTSEL_DIR": str(empty)})
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("reku flash: error: cannot open serial port /dev/does-not-exist")


def test_bootsel_drive_found_by_scanning_mount_points(tmp_path, monkeypatch):
    media = tmp_path / "media" / "user"
    media.mkdir(parents=True)
    (media / "USBSTICK").mkdir()
    drive = bootsel_dir(media, INFO_RP2040)
    monkeypatch.delenv("REKU_BOOTSEL_DIR", raising=False)
    monkeypatch.setattr(flash, "BOOTSEL_GLOBS", (str(tmp_path / "media" / "*" / "*"),))
    assert flash.find_bootsel(boards.load("pico")) == drive
    with pytest.raises(RekuError, match="is an RP2040 \\(Board-ID RPI-RP2\\), but board pico2 is an RP2350"):
        flash.find_bootsel(boards.load("pico2"))
    (drive / "INFO_UF2.TXT").unlink()
    assert flash.find_bootsel(boards.load("pico")) is None


# ---- ESP: the whole esptool session against a simulated serial bootloader ---------------------------------

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "helpers"))
from esp_rom_sim import EspRomSim  # noqa: E402


@pytest.mark.parametrize("name,chip", sorted(ESP_BOARDS.items()))
def test_esp_flash_end_to_end_with_real_esptool(esp_images, name, chip, tmp_path):
    profile = boards.load(name)
    fw = tmp_path / "firmware.bin"
    fw.write_bytes(esp_images[chip])
    off = profile["firmware_offset"]
    with EspRomSim(chip, flash_size=profile["flash_kb"] * 1024) as sim:
        sim.flash[:] = os.urandom(len(sim.flash))          # old contents: erased by --erase
        r = reku("flash", "--board", name, "--port", sim.port, "--firmware", str(fw), "--erase")
        assert r.returncode == 0, r.stdout + r.stderr
        data = fw.read_bytes()
        assert bytes(sim.flash[off:off + len(data)]) == data
        assert bytes(sim.flash[off + len(data):]) == b"\xff" * (len(sim.flash) - off - len(data))
        steps = [s for s, _ in sim.log if s in ("stub", "erase_flash", "write_begin", "md5")]
        assert steps == ["stub", "erase_flash", "write_begin", "md5", "md5"]   # esptool's check + verify_flash
        assert ("write_begin", off) in sim.log and ("md5", (off, len(data))) in sim.log
    assert "detected %s on %s" % (flash.chip_title(chip), sim.port) in r.stdout
    assert "Verification successful" in r.stdout
    assert r.stdout.rstrip().endswith("done: %s flashed with %s" % (name, fw))


def test_esp_flash_refuses_the_wrong_chip_on_the_port(esp_images, tmp_path):
    fw = tmp_path / "firmware.bin"
    fw.write_bytes(esp_images["esp32"])
    with EspRomSim("esp32s3") as sim:
        r = reku("flash", "--board", "esp32-devkitc", "--port", sim.port, "--firmware", str(fw))
        assert not any(s == "write_begin" for s, _ in sim.log)
        assert bytes(sim.flash) == b"\xff" * len(sim.flash)
    # (esptool itself warns on stderr that a pty has no DTR/RTS to reset the chip with)
    assert r.returncode == 1 and r.stderr.count("reku flash: error:") == 1
    assert r.stderr.strip().splitlines()[-1] == ("reku flash: error: the chip on %s is an ESP32-S3, but board "
                                                 "esp32-devkitc is an ESP32: nothing written" % sim.port)


def test_esp_flash_refuses_a_flash_too_small_for_the_image(esp_images, tmp_path):
    fw = tmp_path / "firmware.bin"
    fw.write_bytes(esp_images["esp32c3"] + b"\xff" * (1 << 20))
    with EspRomSim("esp32c3", flash_size=1 << 20) as sim:
        r = reku("flash", "--board", "xiao-esp32c3", "--port", sim.port, "--firmware", str(fw))
        assert not any(s == "write_begin" for s, _ in sim.log)
    assert r.returncode == 1 and r.stderr.count("reku flash: error:") == 1
    assert "the flash on %s is 1MB, the image needs %d bytes: nothing written" % (sim.port, fw.stat().st_size) \
        in r.stderr
