#!/usr/bin/env bash
# Build and install picotool, which the Pico SDK (2.x) runs to make a UF2 image: `reku firmware build --board pico`
# (or pico2) needs it, and the SDK otherwise tries to download it during the build. Built without USB support
# (no libusb needed: the build only converts and inspects images; flashing goes through `reku flash`).
#
# usage: build-picotool.sh PICOTOOL_SRC PICO_SDK PREFIX
#   PICOTOOL_SRC  a checkout of https://github.com/raspberrypi/picotool at the version the SDK names
#                 (pico-sdk 2.2.0, MicroPython 1.28's: picotool 2.1.1)
#   PICO_SDK      the SDK the firmware builds with (MicroPython's lib/pico-sdk)
#   PREFIX        where to install; then `export picotool_ROOT=PREFIX` before `reku firmware build`
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 PICOTOOL_SRC PICO_SDK PREFIX" >&2; exit 2; }
src=$(realpath "$1") sdk=$(realpath "$2") prefix=$(realpath -m "$3")
[ -f "$src/CMakeLists.txt" ] || { echo "$src is not a picotool source tree" >&2; exit 1; }
[ -f "$sdk/pico_sdk_init.cmake" ] || { echo "$sdk is not a Pico SDK" >&2; exit 1; }
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cmake -S "$src" -B "$build" -DPICO_SDK_PATH="$sdk" -DPICOTOOL_NO_LIBUSB=1 -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
make -C "$build" -j"$(nproc)" install >/dev/null
echo "picotool installed in $prefix: export picotool_ROOT=$prefix"
