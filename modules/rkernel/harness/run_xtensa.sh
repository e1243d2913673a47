#!/usr/bin/env bash
# Kernel parity of rk_core.c compiled for the ESP32's Xtensa core (windowed ABI, -O2 as the natmod) against the
# same harness compiled for this machine: kernels_dump.c's hashes must be identical. QEMU (Debian's qemu-user,
# qemu-xtensa) has no ESP32 core, and none of its windowed cores (dc233c is used) has the ESP32's MUL32_HIGH option
# (mulsh, muluh); so the binary that runs is built by the ESP32 compiler's twin without that option
# (build-xtensa-esp32.sh with NO_MUL32_HIGH=1), and the script lists the functions where the ESP32 compiler's own
# code differs from the twin's: there, and only there, the emulator did not run the ESP32's instructions.
#
# usage: run_xtensa.sh ESP32_PREFIX TWIN_PREFIX   (the PREFIX folders build-xtensa-esp32.sh installed into)
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 ESP32_PREFIX TWIN_PREFIX" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
esp=$1/bin/xtensa-esp32-elf- twin=$2/bin/xtensa-esp32-elf-
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -O2 -I"$here/.." -o "$out/native" "$here/native_main.c" "$here/kernels_dump.c" "$here/../rk_core.c"
"$out/native" > "$out/native.txt"
"${twin}gcc" -O2 -mlongcalls -ffreestanding -nostdlib -static -I"$here/.." -o "$out/xtensa" \
    "$here/start_linux_xtensa.S" "$here/kernels_dump.c" "$here/../rk_core.c" -lgcc
qemu-xtensa -cpu dc233c "$out/xtensa" > "$out/xtensa.txt"
diff "$out/native.txt" "$out/xtensa.txt" || { echo "parity FAILED" >&2; exit 1; }
echo "parity: $(wc -l < "$out/native.txt") kernel hashes identical ($(uname -m) vs the ESP32 twin on qemu-xtensa dc233c)"
# what the ESP32 compiler emits differently, function by function
for cross in "$esp" "$twin"; do
    "${cross}gcc" -O2 -mlongcalls -ffreestanding -I"$here/.." -c "$here/../rk_core.c" -o "$out/rk.o"
    "${cross}objdump" -d "$out/rk.o" | awk '/^[0-9a-f]+ <.*>:/ { f = $2 } NF >= 3 && $1 ~ /:$/ { c[f] = c[f] " " $3 }
        END { for (k in c) print k, c[k] }' | sort > "$out/$(basename "$(dirname "$(dirname "$cross")")").ops"
done
n=$(wc -l < "$out/$(basename "$1").ops")
d=$(diff "$out/$(basename "$1").ops" "$out/$(basename "$2").ops" | grep -c '^<' || true)
echo "rk_core.o: $d of $n functions compile differently for the ESP32 itself:"
diff "$out/$(basename "$1").ops" "$out/$(basename "$2").ops" | grep '^<' | while read -r _ f ops; do
    echo "  $f uses $(echo "$ops" | tr ' ' '\n' | grep -E '^mul(sh|uh)$' | sort | uniq -c | xargs)"
done
