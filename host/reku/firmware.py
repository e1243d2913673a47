"""`reku firmware build`: a custom MicroPython image with reku in it, from a MicroPython source tree the user gives.

What goes into the image (docs/custom-firmware.md):
- rkfw frozen (modules/manifest.py, included after the port's own manifest, so the board keeps what stock firmware
  freezes): its code runs from flash and takes no heap to import;
- rkernel as a user C module (modules/micropython.cmake for the CMake ports rp2 and esp32, modules/ for the make
  ports): the native kernel tier with no natmod loader;
- a ROMFS region of --romfs-kb KiB for the model: on rp2 MICROPY_HW_ROMFS_BYTES in a board definition made from the
  stock one; on esp32 a partition table with a `romfs` partition; on MicroPython's qemu port (which has no ROMFS
  partition) the ROMFS image of --model is compiled into the firmware (modules/rkrom) and rkrom.image() mounts it.

Before it starts it checks the tree, the port's toolchain and SDK, and says in one line what is missing. The tree,
its build folders and the images are MicroPython's, never part of this repository."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from . import paths
from .errors import RekuError

MODULES = paths.MODULES
PINNED = (1, 28, 0)             # the release the recipes are verified against (docs/custom-firmware.md)
OLDEST = (1, 25, 0)             # ROMFS (vfs.VfsRom, MICROPY_HW_ROMFS_BYTES, the romfs partition) came in 1.25
# The emulator target: MicroPython's qemu port on the mps2-an385 machine (Cortex-M3), where a custom image is built
# and measured on this machine; not a board of hw/boards.
QEMU = {"name": "qemu", "title": "MicroPython qemu port, mps2-an385 (Cortex-M3)", "port": "qemu",
        "mp_board": "MPS2_AN385", "flash_kb": 4096}
# Its heap: a Pico's (hw/boards/pico.json, 205 KB) plus room for what `mpremote mount` holds while measuring (9 KB)
QEMU_HEAP_KB = 224
IMAGE = {"qemu": "firmware.elf", "rp2": "firmware.uf2", "esp32": "firmware.bin"}
ESP32_APP_KB = 1984             # the stock 4 MiB table's factory app (0x1F0000), kept as is


def target(board):
    if board == "qemu":
        return dict(QEMU)
    from .deploy import load_profile
    profile, _ = load_profile(board)
    if profile.get("port") not in IMAGE or not profile.get("mp_board"):
        raise RekuError("board %s has no MicroPython port and board name in its profile" % board)
    return profile


def tree_version(tree):
    text = (tree / "py" / "mpconfig.h").read_text()
    return tuple(int(re.search(r"#define MICROPY_VERSION_%s (\d+)" % k, text).group(1))
                 for k in ("MAJOR", "MINOR", "MICRO"))


def missing(tree, tgt, env=None):
    """What this build needs and this machine lacks, as short phrases (empty: ready to build)."""
    env = os.environ if env is None else env
    which = lambda t: shutil.which(t, path=env.get("PATH"))       # noqa: E731
    port = tgt["port"]
    out = []
    if not (tree / "py" / "mpconfig.h").is_file():
        return ["%s is not a MicroPython source tree (no py/mpconfig.h): git clone "
                "https://github.com/micropython/micropython and check out v%d.%d.%d" % ((tree,) + PINNED)]
    v = tree_version(tree)
    if v < OLDEST:
        out.append("MicroPython %d.%d.%d in %s is older than %d.%d (no ROMFS): check out v%d.%d.%d"
                   % (v + (tree,) + OLDEST[:2] + PINNED))
    if not (tree / "ports" / port / "Makefile").is_file():
        out.append("%s has no ports/%s" % (tree, port))
    for tool, pkg in (("make", "make"), ("gcc", "gcc")):
        if not which(tool):
            out.append("%s (Debian package %s)" % (tool, pkg))
    if port in ("qemu", "rp2") and not which("arm-none-eabi-gcc"):
        out.append("the Arm compiler arm-none-eabi-gcc (Debian package gcc-arm-none-eabi)")
    if port in ("rp2", "esp32") and not (tree / "lib" / "micropython-lib" / "README.md").is_file():
        out.append("micropython-lib in %s/lib/micropython-lib (git submodule update --init lib/micropython-lib)" % tree)
    if port == "rp2":
        if not which("cmake"):
            out.append("cmake (Debian package cmake)")
        if not (tree / "lib" / "pico-sdk" / "pico_sdk_init.cmake").is_file():
            out.append("the Pico SDK in %s/lib/pico-sdk (make -C ports/rp2 BOARD=%s submodules)" % (tree, tgt["mp_board"]))
        for sub, probe in (("tinyusb", "src/tusb.h"), ("mbedtls", "library/aes.c")):
            if not (tree / "lib" / sub / probe).is_file():
                out.append("%s in %s/lib/%s (make -C ports/rp2 BOARD=%s submodules)" % (sub, tree, sub, tgt["mp_board"]))
        if not picotool_found(env):
            out.append("picotool with its CMake package (the Pico SDK makes the UF2 with it): "
                       "modules/toolchains/build-picotool.sh, then export picotool_ROOT")
    if port == "esp32":
        idf = env.get("IDF_PATH")
        if not idf or not (Path(idf) / "tools" / "idf.py").is_file() or not which("idf.py"):
            out.append("ESP-IDF (IDF_PATH set and idf.py on PATH: run `. $IDF_PATH/export.sh`; the version "
                       "ports/esp32/README.md names)")
    return out


def picotool_found(env):
    """Can the Pico SDK's find_package(picotool) find one: picotool_ROOT / picotool_DIR / CMAKE_PREFIX_PATH, or a
    picotool on PATH installed with its CMake package (CMake looks in PREFIX/lib/cmake for each PATH entry)."""
    prefixes = [env.get("picotool_ROOT"), env.get("picotool_DIR")] + env.get("CMAKE_PREFIX_PATH", "").split(":")
    exe = shutil.which("picotool", path=env.get("PATH"))
    if exe:
        prefixes.append(str(Path(exe).resolve().parent.parent))
    for p in filter(None, prefixes):
        p = Path(p)
        if (p / "picotoolConfig.cmake").is_file() or any(p.glob("lib*/cmake/picotool/picotoolConfig.cmake")):
            return True
    return False


# ---- generated recipe files (written into the build folder) ---------------------------------------------------
def manifest_text(tree, tgt):
    """The frozen manifest: the port's own board manifest (what stock firmware freezes), then reku's."""
    lines = ["# generated by `reku firmware build`: the port's manifest, then reku's (modules/manifest.py)"]
    port_manifest = tree / "ports" / tgt["port"] / "boards" / "manifest.py"
    if port_manifest.is_file():
        lines.append('include("$(PORT_DIR)/boards/manifest.py")')
    lines.append("include(%r)" % str(MODULES / "manifest.py"))
    return "\n".join(lines) + "\n"


def romfs_c(image):
    """C source of a ROMFS image as a const array (modules/rkrom)."""
    rows = [", ".join("0x%02x" % b for b in image[i:i + 16]) for i in range(0, len(image), 16)]
    return ("// generated by `reku firmware build`: a ROMFS image for modules/rkrom\n"
            "const unsigned int rkrom_size = %d;\n"
            "const unsigned char rkrom_image[] __attribute__((aligned(4))) = {\n    %s\n};\n"
            % (len(image), ",\n    ".join(rows)))


def esp32_partitions(romfs_kb, flash_kb=4096):
    """A partition table with the stock app and a `romfs` partition after it; the filesystem MicroPython makes
    from the rest of the flash (ports/esp32/main.c)."""
    start = 0x10000 + ESP32_APP_KB * 1024
    size = romfs_kb * 1024
    if romfs_kb % 4 or romfs_kb <= 0:
        raise RekuError("--romfs-kb must be a positive multiple of 4 (flash sectors), got %d" % romfs_kb)
    if start + size > flash_kb * 1024 - 64 * 1024:
        raise RekuError("a ROMFS of %d KiB after the %d KiB application leaves less than 64 KiB of %d KiB flash for "
                        "the filesystem" % (romfs_kb, ESP32_APP_KB, flash_kb))
    return ("# Name,   Type, SubType, Offset,   Size,\n"
            "nvs,      data, nvs,     0x9000,   0x6000,\n"
            "phy_init, data, phy,     0xf000,   0x1000,\n"
            "factory,  app,  factory, 0x10000,  0x%X,\n"
            "romfs,    data, 0x8f,    0x%X, 0x%X,\n" % (ESP32_APP_KB * 1024, start, size))


_FS_DEFINE = re.compile(r"^#define MICROPY_HW_FLASH_STORAGE_BYTES\s+(.*?)\s*$", re.M)


def rp2_fs_kb(tree, tgt):
    """The stock board's filesystem size (MICROPY_HW_FLASH_STORAGE_BYTES of its mpconfigboard.h), KiB: written
    (N * 1024) on RPI_PICO, (PICO_FLASH_SIZE_BYTES - 1024 * 1024) on RPI_PICO2."""
    h = tree / "ports" / "rp2" / "boards" / tgt["mp_board"] / "mpconfigboard.h"
    m = _FS_DEFINE.search(h.read_text()) if h.is_file() else None
    v = re.sub(r"\s+", "", m.group(1)) if m else ""
    kb = re.fullmatch(r"\((\d+)\*1024\)", v)
    if kb:
        return int(kb.group(1))
    mb = re.fullmatch(r"\(PICO_FLASH_SIZE_BYTES-(?:(\d+)\*)?1024\*1024\)", v)
    if mb:
        return tgt["flash_kb"] - 1024 * int(mb.group(1) or 1)
    raise RekuError("%s does not say its filesystem size in a form reku reads (%r): give --fs-kb" % (h, v))


def rp2_layout(tree, tgt, romfs_kb, fs_kb=None):
    """rp2 flash from the top: the filesystem, the ROMFS region below it, the firmware's code space below that.
    {"flash", "fs", "romfs", "code"} in KiB; the code space must hold firmware.bin (checked after the build)."""
    fs = fs_kb if fs_kb is not None else rp2_fs_kb(tree, tgt)
    flash = tgt["flash_kb"]
    code = flash - fs - (romfs_kb or 0)
    if fs % 4 or fs <= 0 or code <= 0:
        raise RekuError("a filesystem of %d KiB and a ROMFS of %d KiB do not fit the %d KiB flash of %s"
                        % (fs, romfs_kb or 0, flash, tgt["name"]))
    return {"flash": flash, "fs": fs, "romfs": romfs_kb or 0, "code": code}


def board_dir(tree, tgt, romfs_kb, build, fs_kb=None):
    """A board definition for a ROMFS region (and, on rp2, another filesystem size): a copy of the stock one with
    them set; None when the stock one serves."""
    if tgt["port"] == "qemu" or not (romfs_kb or fs_kb):
        return None
    stock = tree / "ports" / tgt["port"] / "boards" / tgt["mp_board"]
    if not stock.is_dir():
        raise RekuError("%s has no board %s" % (stock.parent, tgt["mp_board"]))
    dst = build / ("%s_REKU" % tgt["mp_board"])
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(stock, dst)
    if tgt["port"] == "rp2":
        if (romfs_kb or 0) % 4 or (fs_kb or 0) % 4:
            raise RekuError("--romfs-kb and --fs-kb must be multiples of 4 (flash sectors)")
        if fs_kb:
            h = (dst / "mpconfigboard.h").read_text()
            line = "#define MICROPY_HW_FLASH_STORAGE_BYTES          (%d * 1024)" % fs_kb
            h = _FS_DEFINE.sub(line, h) if _FS_DEFINE.search(h) else h + "\n" + line + "\n"
            (dst / "mpconfigboard.h").write_text(h)
        cmake = (tree / "ports" / "rp2" / "CMakeLists.txt").read_text()
        if not romfs_kb:
            pass
        elif "MICROPY_HW_ROMFS_BYTES" in cmake:         # later MicroPython: a CMake variable that also sizes the linker script
            with open(dst / "mpconfigboard.cmake", "a") as f:
                f.write("\n# reku: ROMFS region\nset(MICROPY_HW_ROMFS_BYTES %d)\n" % (romfs_kb * 1024))
        else:
            with open(dst / "mpconfigboard.h", "a") as f:
                f.write("\n// reku: ROMFS region at the top of the code space\n#define MICROPY_HW_ROMFS_BYTES (%d)\n"
                        % (romfs_kb * 1024))
    else:
        if fs_kb:
            raise RekuError("--fs-kb is for rp2 boards (on esp32 the filesystem takes the flash after the last "
                            "partition)")
        (dst / "partitions-reku-romfs.csv").write_text(esp32_partitions(romfs_kb, tgt.get("flash_kb", 4096)))
        with open(dst / "mpconfigboard.h", "a") as f:
            f.write("\n// reku: a ROMFS partition\n#define MICROPY_VFS_ROM (1)\n")
        (dst / "sdkconfig.reku").write_text('CONFIG_PARTITION_TABLE_CUSTOM=y\n'
                                           'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="%s"\n'
                                           % (dst / "partitions-reku-romfs.csv"))
        cm = (dst / "mpconfigboard.cmake").read_text()
        m = re.search(r"set\(SDKCONFIG_DEFAULTS([^)]*)\)", cm)
        if m is None:
            raise RekuError("%s/mpconfigboard.cmake sets no SDKCONFIG_DEFAULTS to add the partition table to" % stock)
        cm = cm[:m.end() - 1] + "\n    ${MICROPY_BOARD_DIR}/sdkconfig.reku\n" + cm[m.end() - 1:]
        (dst / "mpconfigboard.cmake").write_text(cm)
    return dst


def plan(tree, tgt, build, romfs_kb=None, model=None, jobs=2, heap_kb=QEMU_HEAP_KB):
    """(files to write {path: text}, the make command, the image it produces)."""
    port = tgt["port"]
    files = {build / "reku_manifest.py": manifest_text(tree, tgt)}
    args = ["make", "-C", str(tree / "ports" / port), "-j%d" % jobs, "BUILD=%s" % build,
            "FROZEN_MANIFEST=%s" % (build / "reku_manifest.py")]
    if port == "qemu":
        args += ["BOARD=%s" % tgt["mp_board"], "USER_C_MODULES=%s" % MODULES, "MICROPY_HEAP_SIZE=%d" % (heap_kb * 1024)]
        if romfs_kb:
            if model is None:
                raise RekuError("the qemu port has no ROMFS partition to deploy to later: give --model to compile "
                                "the model's ROMFS image into the firmware")
            from .deploy import build_romfs
            image = build_romfs(Path(model).read_bytes())
            if len(image) > romfs_kb * 1024:
                raise RekuError("the ROMFS image of %s is %d bytes, more than --romfs-kb %d (%d bytes)"
                                % (model, len(image), romfs_kb, romfs_kb * 1024))
            files[build / "rkrom_image.c"] = romfs_c(image)
            args.append("RKROM_IMAGE=%s" % (build / "rkrom_image.c"))
    else:
        args.append("USER_C_MODULES=%s" % (MODULES / "micropython.cmake"))
        args.append("BOARD=%s" % tgt["mp_board"])
    return files, args, build / IMAGE[port]


def configure(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="build a MicroPython image with rkfw frozen, rkernel built in and a ROMFS region")
    b.add_argument("--board", required=True, help="board profile (hw/boards: pico, pico2, esp32-devkitc, ...) "
                   "or qemu (MicroPython's qemu port, mps2-an385)")
    b.add_argument("--micropython", required=True, metavar="DIR",
                   help="MicroPython source tree (v%d.%d.%d; submodules of the port initialised)" % PINNED)
    b.add_argument("--romfs-kb", type=int, default=None, help="ROMFS region for the model, KiB (rp2: taken from the "
                   "code space; esp32: a partition after the app; qemu: the --model image, compiled in)")
    b.add_argument("--fs-kb", type=int, help="rp2: the filesystem, KiB (default: the stock board's); ROMFS comes out "
                   "of the code space below it, so a large ROMFS needs a smaller filesystem")
    b.add_argument("--model", help="qemu: the model whose ROMFS image goes into the firmware (default: home)")
    b.add_argument("--heap-kb", type=int, default=QEMU_HEAP_KB, help="qemu: the MicroPython heap, KiB (default %d: "
                   "a Pico's 205 plus what mpremote mount holds while measuring)" % QEMU_HEAP_KB)
    b.add_argument("--out", help="copy the image here (default: <board>-reku.<uf2|bin|elf> in this folder)")
    b.add_argument("--build-dir", help="build folder (default: ports/<port>/build-reku-<board> in the tree)")
    b.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    b.add_argument("--dry-run", action="store_true", help="check and print what would be run, build nothing")


def run(args):
    tree = Path(args.micropython).expanduser().resolve()
    tgt = target(args.board)
    problems = missing(tree, tgt)
    if problems:
        raise RekuError("cannot build for %s: missing %s" % (args.board, "; ".join(problems)))
    v = tree_version(tree)
    if v != PINNED:
        print("note: MicroPython %d.%d.%d in %s; the recipes are verified against %d.%d.%d" % (v + (tree,) + PINNED))
    build = Path(args.build_dir).resolve() if args.build_dir else tree / "ports" / tgt["port"] / ("build-reku-%s" % tgt["name"])
    model = None
    if tgt["port"] == "qemu" and args.romfs_kb:
        model = paths.model_file(args.model or "home")
    files, cmd, image = plan(tree, tgt, build, args.romfs_kb, model, args.jobs, args.heap_kb)
    bdir = None
    if not args.dry_run:
        build.mkdir(parents=True, exist_ok=True)
        for path, text in files.items():
            path.write_text(text)
        bdir = board_dir(tree, tgt, args.romfs_kb, build, args.fs_kb)
    elif (args.romfs_kb or args.fs_kb) and tgt["port"] != "qemu":
        bdir = build / ("%s_REKU" % tgt["mp_board"])
    layout = rp2_layout(tree, tgt, args.romfs_kb, args.fs_kb) if tgt["port"] == "rp2" else None
    if layout:
        print("flash of %s: firmware code space %d KiB | ROMFS %d KiB | filesystem %d KiB"
              % (tgt["name"], layout["code"], layout["romfs"], layout["fs"]))
    if bdir is not None:
        cmd = [a for a in cmd if not a.startswith("BOARD=")] + ["BOARD_DIR=%s" % bdir]
    mpy_cross = tree / "mpy-cross" / "build" / "mpy-cross"
    steps = []
    if not mpy_cross.exists():
        steps.append(["make", "-C", str(tree / "mpy-cross"), "-j%d" % args.jobs])
    steps.append(cmd)
    for step in steps:
        print("$ " + " ".join(step), flush=True)
    if args.dry_run:
        return 0
    for step in steps:
        r = subprocess.run(step)
        if r.returncode != 0:
            raise RekuError("the build failed (%s exited with %d); its output is above" % (step[0], r.returncode))
    if not image.is_file():
        raise RekuError("the build produced no %s" % image)
    if layout:
        code = (build / "firmware.bin").stat().st_size
        if code > layout["code"] * 1024:
            raise RekuError("the firmware (%d bytes) runs into the ROMFS region (its code space is %d KiB): give "
                            "--fs-kb %d or less, or a smaller --romfs-kb" % (code, layout["code"], layout["fs"] - (
                                -(-(code - layout["code"] * 1024) // 4096)) * 4))
    out = Path(args.out) if args.out else Path("%s-reku.%s" % (tgt["name"], image.suffix[1:]))
    shutil.copyfile(image, out)
    print("wrote %s: %d bytes (MicroPython %d.%d.%d, %s: rkfw frozen, rkernel built in%s)"
          % ((out, out.stat().st_size) + v + (tgt.get("title", tgt["name"]),
             ", ROMFS %d KiB" % args.romfs_kb if args.romfs_kb else "")))
    if tgt["port"] in ("rp2", "esp32"):
        print("next: reku flash --board %s --port PORT --firmware %s, then reku deploy --board %s --port PORT"
              % (args.board, out, args.board))
    sys.stdout.flush()
    return 0
