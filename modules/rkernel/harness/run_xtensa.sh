#!/usr/bin/env bash
# Kernel parity of rk_core.c compiled for the ESP32 (xtensa-esp32-elf-gcc, windowed ABI, -O2 as the natmod) against
# the same harness compiled for this machine: kernels_dump.c's hashes must be identical. The Xtensa binary runs on
# qemu-xtensa (Debian's qemu-user) with the dc233c core, the windowed-ABI core closest to the ESP32's LX6 that QEMU
# has (docs/native.md says how close). usage: run_xtensa.sh [CROSS] (default xtensa-esp32-elf-)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cross=${1:-xtensa-esp32-elf-}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -O2 -I"$here/.." -o "$out/native" "$here/native_main.c" "$here/kernels_dump.c" "$here/../rk_core.c"
"$out/native" > "$out/native.txt"
"${cross}gcc" -O2 -mlongcalls -ffreestanding -nostdlib -static -I"$here/.." -o "$out/xtensa" \
    "$here/start_linux_xtensa.S" "$here/kernels_dump.c" "$here/../rk_core.c" -lgcc
qemu-xtensa -cpu dc233c "$out/xtensa" > "$out/xtensa.txt"
if diff "$out/native.txt" "$out/xtensa.txt"; then
    echo "parity: $(wc -l < "$out/native.txt") kernel hashes identical (native $(uname -m) vs xtensa-esp32 on qemu-xtensa dc233c)"
else
    echo "parity FAILED" >&2
    exit 1
fi
