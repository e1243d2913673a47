"""`reku firmware build` up to the MicroPython tree (CI has none; the builds against a real tree are recorded in
docs/custom-firmware.md): the frozen manifest, what it says is missing, the commands it runs, the generated board
definitions and partition table, and the ROMFS image compiled into a qemu firmware (C array round trip with gcc,
the image read back by MicroPython's own VfsRom on the WebAssembly build)."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reku import deploy, firmware, paths, sim
from reku.cli import main as reku_main

MODEL = paths.SKILLS / "home" / "model.rku"


def manifest_files():
    """The files modules/manifest.py freezes, read the way MicroPython's manifestfile.py runs it."""
    got = []

    def package(name, files=None, base_path=".", opt=None):
        got.append((name, tuple(files), base_path, opt))
    exec((paths.MODULES / "manifest.py").read_text(), {"package": package})
    return got


def test_manifest_freezes_every_board_module_of_rkfw():
    (name, files, base, opt), = manifest_files()
    assert name == "rkfw" and opt == 3
    assert (paths.MODULES / base).resolve() == paths.FIRMWARE.resolve()
    board_modules = {p.name for p in (paths.FIRMWARE / "rkfw").glob("*.py")} - {"boards.py"}
    assert set(files) == board_modules
    assert "boards.py" not in files             # the host's profile validator; the board reads JSON


def fake_tree(tmp_path, version=(1, 28, 0), ports=("qemu", "rp2", "esp32")):
    t = tmp_path / "micropython"
    (t / "py").mkdir(parents=True)
    (t / "py" / "mpconfig.h").write_text("#define MICROPY_VERSION_MAJOR %d\n#define MICROPY_VERSION_MINOR %d\n"
                                         "#define MICROPY_VERSION_MICRO %d\n" % version)
    for p in ports:
        (t / "ports" / p).mkdir(parents=True)
        (t / "ports" / p / "Makefile").write_text("all:\n")
    rp2 = t / "ports" / "rp2"
    (rp2 / "CMakeLists.txt").write_text("# no ROMFS variable in 1.28\n")
    (rp2 / "boards" / "RPI_PICO").mkdir(parents=True)
    # as MicroPython 1.28's boards/RPI_PICO and boards/RPI_PICO2 say their filesystem size
    (rp2 / "boards" / "RPI_PICO" / "mpconfigboard.h").write_text(
        '#define MICROPY_HW_BOARD_NAME "Raspberry Pi Pico"\n#define MICROPY_HW_FLASH_STORAGE_BYTES          (1408 * 1024)\n')
    (rp2 / "boards" / "RPI_PICO2").mkdir()
    (rp2 / "boards" / "RPI_PICO2" / "mpconfigboard.h").write_text(
        '#define MICROPY_HW_FLASH_STORAGE_BYTES          (PICO_FLASH_SIZE_BYTES - 1024 * 1024)\n')
    (rp2 / "boards" / "RPI_PICO" / "mpconfigboard.cmake").write_text('set(PICO_BOARD "pico")\n')
    (rp2 / "boards" / "manifest.py").write_text('freeze("$(PORT_DIR)/modules")\n')
    esp = t / "ports" / "esp32" / "boards" / "ESP32_GENERIC"
    esp.mkdir(parents=True)
    (esp / "mpconfigboard.h").write_text("#define MICROPY_HW_BOARD_NAME \"Generic ESP32 module\"\n")
    # as MicroPython 1.28's ports/esp32/boards/ESP32_GENERIC/mpconfigboard.cmake
    (esp / "mpconfigboard.cmake").write_text("set(SDKCONFIG_DEFAULTS\n    boards/sdkconfig.base\n"
                                             "    boards/sdkconfig.ble\n)\n")
    return t


def tools_path(tmp_path, tools):
    b = tmp_path / "bin"
    b.mkdir(exist_ok=True)
    for t in tools:
        real = shutil.which(t)
        assert real, t
        (b / t).symlink_to(real)
    return str(b)


def test_it_says_what_is_missing_before_it_starts(tmp_path):
    t = fake_tree(tmp_path)
    env = {"PATH": tools_path(tmp_path, ["make", "gcc"])}
    qemu = firmware.missing(t, firmware.target("qemu"), env)
    assert qemu == ["the Arm compiler arm-none-eabi-gcc (Debian package gcc-arm-none-eabi)"]
    pico = " ".join(firmware.missing(t, firmware.target("pico"), env))
    for what in ("arm-none-eabi-gcc", "cmake", "micropython-lib", "Pico SDK in %s/lib/pico-sdk" % t, "tinyusb in",
                 "mbedtls in", "picotool with its CMake package"):
        assert what in pico
    esp = firmware.missing(t, firmware.target("esp32-devkitc"), env)
    assert any("ESP-IDF" in m and "export.sh" in m for m in esp)
    old = fake_tree(tmp_path / "old", version=(1, 24, 1))
    assert any("older than 1.25" in m for m in firmware.missing(old, firmware.target("qemu"), env))
    assert "not a MicroPython source tree" in firmware.missing(tmp_path / "nothing", firmware.target("qemu"), env)[0]


def test_the_cli_refuses_in_one_line(tmp_path, capsys):
    assert reku_main(["firmware", "build", "--board", "pico", "--micropython", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a MicroPython source tree" in err
    assert reku_main(["firmware", "build", "--board", "nosuch", "--micropython", str(tmp_path)]) != 0


@pytest.fixture
def ready_tree(tmp_path, monkeypatch):
    """A fake tree that passes every check: the checks are the subject of the test above."""
    monkeypatch.setattr(firmware, "missing", lambda tree, tgt, env=None: [])
    return fake_tree(tmp_path)


def dry_run(capsys, *args):
    assert reku_main(["firmware", "build", "--dry-run"] + list(args)) == 0
    return [ln[2:].split() for ln in capsys.readouterr().out.splitlines() if ln.startswith("$ ")]


def test_commands_for_each_port(ready_tree, capsys):
    t = ready_tree
    cmds = dry_run(capsys, "--board", "qemu", "--micropython", str(t), "--jobs", "3")
    assert cmds[0] == ["make", "-C", str(t / "mpy-cross"), "-j3"]          # mpy-cross is built first when missing
    make = cmds[1]
    assert make[:4] == ["make", "-C", str(t / "ports" / "qemu"), "-j3"]
    assert "BOARD=MPS2_AN385" in make and "USER_C_MODULES=%s" % paths.MODULES in make
    assert "MICROPY_HEAP_SIZE=%d" % (224 * 1024) in make
    assert "FROZEN_MANIFEST=%s" % (t / "ports" / "qemu" / "build-reku-qemu" / "reku_manifest.py") in make
    pico = dry_run(capsys, "--board", "pico", "--micropython", str(t))[-1]
    assert "USER_C_MODULES=%s" % (paths.MODULES / "micropython.cmake") in pico and "BOARD=RPI_PICO" in pico
    pico_romfs = dry_run(capsys, "--board", "pico", "--micropython", str(t), "--romfs-kb", "512")[-1]
    assert not any(a.startswith("BOARD=") for a in pico_romfs)
    assert "BOARD_DIR=%s" % (t / "ports" / "rp2" / "build-reku-pico" / "RPI_PICO_REKU") in pico_romfs
    esp = dry_run(capsys, "--board", "esp32-s3-devkitc", "--micropython", str(t))[-1]
    assert esp[2] == str(t / "ports" / "esp32") and "BOARD=ESP32_GENERIC_S3" in esp


def test_frozen_manifest_includes_the_ports_own_then_reku(tmp_path):
    t = fake_tree(tmp_path)
    rp2 = firmware.manifest_text(t, firmware.target("pico"))
    assert rp2.splitlines()[1:] == ['include("$(PORT_DIR)/boards/manifest.py")',
                                    "include(%r)" % str(paths.MODULES / "manifest.py")]
    qemu = firmware.manifest_text(t, firmware.target("qemu"))       # the qemu port has no board manifest
    assert qemu.splitlines()[1:] == ["include(%r)" % str(paths.MODULES / "manifest.py")]


def test_rp2_board_definition_with_a_romfs_region(tmp_path):
    t = fake_tree(tmp_path)
    d = firmware.board_dir(t, firmware.target("pico"), 512, tmp_path / "build")
    h = (d / "mpconfigboard.h").read_text()
    assert h.startswith('#define MICROPY_HW_BOARD_NAME "Raspberry Pi Pico"')
    assert h.rstrip().endswith("#define MICROPY_HW_ROMFS_BYTES (524288)")
    # a later MicroPython makes it a CMake variable (it also sizes the linker script)
    (t / "ports" / "rp2" / "CMakeLists.txt").write_text("if (MICROPY_HW_ROMFS_BYTES)\n")
    d = firmware.board_dir(t, firmware.target("pico"), 256, tmp_path / "build")
    assert (d / "mpconfigboard.cmake").read_text().rstrip().endswith("set(MICROPY_HW_ROMFS_BYTES 262144)")
    assert "ROMFS" not in (d / "mpconfigboard.h").read_text()
    with pytest.raises(Exception, match="multiples of 4"):
        firmware.board_dir(t, firmware.target("pico"), 130, tmp_path / "build")


def test_rp2_flash_layout_and_a_smaller_filesystem(tmp_path):
    t = fake_tree(tmp_path)
    assert firmware.rp2_fs_kb(t, firmware.target("pico")) == 1408
    assert firmware.rp2_fs_kb(t, firmware.target("pico2")) == 4096 - 1024
    assert firmware.rp2_layout(t, firmware.target("pico"), 512, 1024) == {"flash": 2048, "fs": 1024, "romfs": 512,
                                                                          "code": 512}
    with pytest.raises(Exception, match="do not fit the 2048 KiB flash"):
        firmware.rp2_layout(t, firmware.target("pico"), 1024, None)
    d = firmware.board_dir(t, firmware.target("pico"), 512, tmp_path / "build", fs_kb=1024)
    h = (d / "mpconfigboard.h").read_text()
    assert "#define MICROPY_HW_FLASH_STORAGE_BYTES          (1024 * 1024)" in h and "1408" not in h
    assert h.count("MICROPY_HW_FLASH_STORAGE_BYTES") == 1


def parse_partitions(text):
    rows = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, typ, sub, off, size = [c.strip() for c in line.split(",")[:5]]
            rows.append((name, typ, sub, int(off, 16), int(size, 16)))
    return rows


@pytest.mark.parametrize("kb", [128, 512, 1024])
def test_esp32_partition_table(kb):
    rows = parse_partitions(firmware.esp32_partitions(kb))
    names = [r[0] for r in rows]
    assert names == ["nvs", "phy_init", "factory", "romfs"]
    end = 0
    for name, typ, sub, off, size in rows:
        assert off >= end and off % 0x1000 == 0 and size % 0x1000 == 0
        end = off + size
    factory = rows[2]
    assert factory[3] == 0x10000 and factory[3] % 0x10000 == 0 and factory[4] == 0x1F0000   # the stock app
    romfs = rows[3]
    assert romfs[1:3] == ("data", "0x8f") and romfs[4] == kb * 1024            # MicroPython's romfs subtype
    assert end <= 4 * 1024 * 1024 - 64 * 1024                                   # room left for the filesystem
    with pytest.raises(Exception, match="less than 64 KiB"):
        firmware.esp32_partitions(2048)


def test_esp32_board_definition(tmp_path):
    t = fake_tree(tmp_path)
    d = firmware.board_dir(t, firmware.target("esp32-devkitc"), 512, tmp_path / "build")
    assert "#define MICROPY_VFS_ROM (1)" in (d / "mpconfigboard.h").read_text()
    cm = (d / "mpconfigboard.cmake").read_text()
    assert cm.index("boards/sdkconfig.ble") < cm.index("${MICROPY_BOARD_DIR}/sdkconfig.reku") < cm.index(")")
    sdk = (d / "sdkconfig.reku").read_text()
    assert 'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="%s"' % (d / "partitions-reku-romfs.csv") in sdk
    assert parse_partitions((d / "partitions-reku-romfs.csv").read_text())[-1][4] == 512 * 1024


def test_qemu_romfs_image_in_the_firmware_round_trips(tmp_path):
    """The image `reku firmware build --board qemu --romfs-kb N` compiles in: gcc turns the generated C back into
    the same bytes, and MicroPython's VfsRom (WebAssembly build) reads the model out of it unchanged."""
    image = deploy.build_romfs(MODEL.read_bytes())
    c = tmp_path / "rkrom_image.c"
    c.write_text(firmware.romfs_c(image))
    main = tmp_path / "dump.c"
    main.write_text(textwrap.dedent("""\
        #include <stdio.h>
        extern const unsigned char rkrom_image[]; extern const unsigned int rkrom_size;
        int main(void) { fwrite(rkrom_image, 1, rkrom_size, stdout); return ((unsigned long)rkrom_image) % 4; }
    """))
    exe = tmp_path / "dump"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(c), str(main)], check=True)
    assert subprocess.run([str(exe)], capture_output=True, check=True).stdout == image
    # read back by MicroPython itself
    mjs = sim.micropython_mjs()
    if mjs is None:
        pytest.fail("the MicroPython WebAssembly build is missing (`make test` installs it)")
    (tmp_path / "romfs.img").write_bytes(image)
    script = tmp_path / "read.mjs"
    script.write_text(textwrap.dedent("""\
        import fs from "fs";
        import { pathToFileURL } from "url";
        const [mjs, img] = process.argv.slice(2);
        const { loadMicroPython } = await import(pathToFileURL(mjs).href);
        let out = "";
        const mp = await loadMicroPython({ stdout: (s) => { out += s + "\\n"; } });
        mp.FS.writeFile("/romfs.img", fs.readFileSync(img));
        mp.runPython(`
import vfs, hashlib, binascii
buf = open('/romfs.img', 'rb').read()
vfs.mount(vfs.VfsRom(buf), '/rom')
f = open('/rom/model.rku', 'rb')
m = memoryview(f)
print(len(m), binascii.hexlify(hashlib.sha256(m).digest()).decode())
`);
        process.stdout.write(out);
    """))
    r = subprocess.run(["node", str(script), str(mjs), str(tmp_path / "romfs.img")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    n, digest = r.stdout.split()
    assert int(n) == MODEL.stat().st_size and digest == hashlib.sha256(MODEL.read_bytes()).hexdigest()


def test_qemu_romfs_needs_a_model_that_fits(ready_tree, tmp_path, capsys):
    assert reku_main(["firmware", "build", "--dry-run", "--board", "qemu", "--micropython", str(ready_tree),
                      "--romfs-kb", "64"]) == 1
    err = capsys.readouterr().err
    assert "ROMFS image of" in err and "more than --romfs-kb 64" in err and err.count("\n") == 1


def test_deploy_puts_only_main_py_on_a_firmware_with_rkfw_frozen():
    frozen = deploy.firmware_items({"frozen": True, "mpy_major": 6, "mpy_sub": 3, "arch": "armv6m"}, {}, True,
                                   lambda line: None)
    assert [it.path for it in frozen] == ["main.py"]
    stock = deploy.firmware_items({"frozen": False, "mpy_major": 6, "mpy_sub": 3, "arch": None}, {}, True,
                                  lambda line: None)
    assert len(stock) == 1 + len(list((paths.FIRMWARE / "rkfw").glob("*.py")))
