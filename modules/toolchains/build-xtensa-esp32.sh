#!/usr/bin/env bash
# Build a C cross compiler for the ESP32 (Xtensa LX6, windowed ABI): binutils and GCC from Debian's source packages
# with Espressif's core configuration overlay, for the rkernel native module (`make -C modules/rkernel/natmod
# ARCH=xtensawin`, docs/native.md). Debian's own Xtensa compiler (gcc-xtensa-lx106) is built for the ESP8266's
# core with the call0 ABI, and its GCC (12) cannot load another core at run time (XTENSA_GNU_CONFIG needs GCC 13;
# binutils 2.40 has it), so the ESP32's core is compiled in here, as Espressif's own toolchain does.
#
# usage: build-xtensa-esp32.sh OVERLAYS PREFIX [WORK]
#   OVERLAYS  a checkout of https://github.com/espressif/xtensa-overlays (xtensa_esp32/ is used)
#   PREFIX    where to install (PREFIX/bin/xtensa-esp32-elf-gcc ...)
#   WORK      build folder (default: a temporary one)
# NO_MUL32_HIGH=1: the same core without the MUL32_HIGH option (no mulsh/muluh), whose code QEMU's windowed cores
#   (dc233c) run: the emulator twin for modules/rkernel/harness/run_xtensa.sh (use another PREFIX and WORK).
# needs: apt-get install binutils-source gcc-12-source (tarballs in /usr/src), gcc, g++, make, libgmp-dev,
#        libmpfr-dev, libmpc-dev, texinfo-free build (makeinfo not needed: MAKEINFO=true)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OVERLAYS PREFIX [WORK]" >&2; exit 2; }
ov=$(realpath "$1")/xtensa_esp32 prefix=$(realpath -m "$2")
work=${3:-$(mktemp -d)}
mkdir -p "$work" && work=$(realpath "$work")
target=xtensa-esp32-elf
jobs=$(nproc)
[ -f "$ov/gcc/include/xtensa-config.h" ] || { echo "$1 is not an xtensa-overlays checkout" >&2; exit 1; }
bu=$(ls /usr/src/binutils/binutils-*.tar.* 2>/dev/null | head -1)
gc=$(ls /usr/src/gcc-12/gcc-12*.tar.* 2>/dev/null | head -1)
[ -n "$bu" ] && [ -n "$gc" ] || { echo "install Debian's binutils-source and gcc-12-source first" >&2; exit 1; }

cd "$work"
if [ ! -d binutils-src ]; then
    mkdir binutils-src && tar -xf "$bu" -C binutils-src --strip-components=1
    cp "$ov/binutils/include/xtensa-config.h" binutils-src/include/
    cp "$ov/binutils/bfd/xtensa-modules.c" binutils-src/bfd/
fi
if [ ! -d gcc-src ]; then
    mkdir gcc-src && tar -xf "$gc" -C gcc-src --strip-components=1
    cp "$ov/gcc/include/xtensa-config.h" gcc-src/include/
    if [ "${NO_MUL32_HIGH:-0}" = 1 ]; then
        sed -i 's/^#define XCHAL_HAVE_MUL32_HIGH\([[:space:]]*\)1$/#define XCHAL_HAVE_MUL32_HIGH\10/' gcc-src/include/xtensa-config.h
        grep -q "^#define XCHAL_HAVE_MUL32_HIGH[[:space:]]*0$" gcc-src/include/xtensa-config.h
    fi
fi

mkdir -p binutils-build && cd binutils-build
[ -f Makefile ] || ../binutils-src/configure --target=$target --prefix="$prefix" --disable-nls --disable-werror \
    --disable-gdb --disable-sim --disable-gprofng --disable-libdecnumber --disable-readline >/dev/null
make -j"$jobs" MAKEINFO=true >/dev/null
make install MAKEINFO=true >/dev/null
cd "$work"

export PATH="$prefix/bin:$PATH"
mkdir -p gcc-build && cd gcc-build
[ -f Makefile ] || ../gcc-src/configure --target=$target --prefix="$prefix" --enable-languages=c --without-headers \
    --with-newlib --disable-nls --disable-shared --disable-threads --disable-libssp --disable-libgomp \
    --disable-libquadmath --disable-libatomic --disable-multilib --with-gnu-as --with-gnu-ld >/dev/null
make -j"$jobs" all-gcc MAKEINFO=true >/dev/null
make -j"$jobs" all-target-libgcc MAKEINFO=true >/dev/null
# Debian's gcc-12 tarball is -dfsg: the GFDL manuals are out, and the install step's tm.texi check cannot find
# where to document the target hooks; the check is about documentation only
touch gcc/s-tm-texi
make install-gcc install-target-libgcc MAKEINFO=true >/dev/null
echo "installed $prefix/bin/$target-gcc: $("$prefix/bin/$target-gcc" --version | head -1)"
