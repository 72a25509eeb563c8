#!/usr/bin/env bash
# QEMU smoke test of the firmware kernels: builds the board app (firmware/app) for the
# Cortex-M4F and the host check (firmware/app/host-check), runs the app on QEMU mps2-an386 and
# the check on the host, prints the app's table (instructions per MAC per layer), and fails
# unless every layer's output checksum on QEMU equals the host's.
#
# Installs nothing. Needs qemu-system-arm (Debian: apt-get install qemu-system-arm) and the
# thumbv7em-none-eabihf target (rustup target add thumbv7em-none-eabihf); exits 2 if either
# is missing. Exit status: 0 all checksums equal, 1 a mismatch or a failed build or run,
# 2 missing tools. Honours CARGO_TARGET_DIR (both builds then go there).
#
# Usage: scripts/qemu-smoke.sh   (QEMU_TIMEOUT=seconds bounds the QEMU run, default 120)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
app=$root/firmware/app
target=thumbv7em-none-eabihf
timeout_s=${QEMU_TIMEOUT:-120}

missing=0
if ! command -v qemu-system-arm >/dev/null 2>&1; then
    echo "qemu-smoke: qemu-system-arm not found; install it: apt-get install -y qemu-system-arm" >&2
    missing=1
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "qemu-smoke: cargo not found" >&2
    missing=1
elif command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx "$target"; then
        echo "qemu-smoke: Rust target $target missing; install it: rustup target add $target" >&2
        missing=1
    fi
elif [ ! -d "$(rustc --print sysroot)/lib/rustlib/$target" ]; then
    echo "qemu-smoke: Rust target $target missing from $(rustc --print sysroot)" >&2
    missing=1
fi
[ "$missing" = 0 ] || exit 2

# Target directories: the app's own (git-ignored) unless CARGO_TARGET_DIR says otherwise.
app_target=${CARGO_TARGET_DIR:-$app/target}
check_target=${CARGO_TARGET_DIR:-$app/target/host-check}
elf=$app_target/$target/release/ecgnas-app
# host-check/.cargo/config.toml sets build.target = "host-tuple", so its output sits under
# the host's triple.
host=$(rustc -vV | sed -n 's/^host: //p')
check_bin=$check_target/$host/debug/ecgnas-app-host-check

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "==> build firmware/app ($target, release)"
(cd "$app" && cargo build --release --target "$target" --target-dir "$app_target")
echo "==> build firmware/app/host-check (host)"
(cd "$app/host-check" && cargo build --target-dir "$check_target")

# The runner of firmware/app/.cargo/config.toml, called directly to bound its time.
echo "==> run on QEMU mps2-an386"
status=0
timeout "$timeout_s" qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
    -semihosting-config enable=on,target=native -icount shift=0 -kernel "$elf" \
    >"$work/qemu.out" 2>"$work/qemu.err" || status=$?
grep -v '^checksum ' "$work/qemu.out" || true
if [ "$status" != 0 ]; then
    cat "$work/qemu.err" >&2
    if [ "$status" = 124 ]; then
        echo "qemu-smoke: FAIL: QEMU did not finish within ${timeout_s}s" >&2
    else
        echo "qemu-smoke: FAIL: the app on QEMU exited with status $status" >&2
    fi
    exit 1
fi

echo "==> run on the host"
if ! "$check_bin" >"$work/host.out"; then
    cat "$work/host.out" >&2
    echo "qemu-smoke: FAIL: the host check failed" >&2
    exit 1
fi

grep '^checksum ' "$work/qemu.out" >"$work/qemu.sum" || true
grep '^checksum ' "$work/host.out" >"$work/host.sum" || true
layers=$(wc -l <"$work/host.sum")
if [ "$layers" = 0 ]; then
    echo "qemu-smoke: FAIL: the host check printed no checksums" >&2
    exit 1
fi
if ! diff -u --label host "$work/host.sum" --label qemu "$work/qemu.sum"; then
    echo "qemu-smoke: FAIL: QEMU and host checksums differ (diff above)" >&2
    exit 1
fi
echo "qemu-smoke: ok: $layers checksums (layers and random cases), QEMU checksums equal the host's"
