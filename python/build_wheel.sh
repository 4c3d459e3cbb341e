#!/usr/bin/env bash
# Builds the biprop wheel: one file for every CPython from 3.9 on (abi3) that
# installs on any x86_64 Linux with glibc 2.17 or newer (manylinux2014), with
# the `biprop` command inside. Needs Rust and Python 3; maturin and zig (as
# the `ziglang` package, the linker that targets the old glibc without a
# container) come from PyPI into a venv of their own, kept for the next build.
#
#   bash python/build_wheel.sh            # -> dist/biprop-VERSION-cp39-abi3-manylinux...whl
#   bash python/build_wheel.sh DIR        # into DIR instead
#
# Cargo's target folder is the clone's (CARGO_TARGET_DIR to change it):
# a second build only relinks what changed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/dist}" && cd "${1:-$ROOT/dist}" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${BIPROP_WHEEL_VENV:-$CARGO_TARGET_DIR/wheel-venv}"
# The versions this was tested with; another zig may not link the same.
TOOLS=(maturin==1.16.0 ziglang==0.17.1 auditwheel==6.8.2)
have() { "$VENV/bin/pip" freeze 2>/dev/null | grep -cxF "${TOOLS[@]/#/-e}"; }
if [ ! -x "$VENV/bin/python" ] || [ "$(have)" != "${#TOOLS[@]}" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "${TOOLS[@]}"
fi
# maturin finds zig through the venv's python (`python -m ziglang`).
export PATH="$VENV/bin:$PATH"
rm -f "$OUT"/biprop-*.whl
maturin build --release --zig --compatibility manylinux2014 \
  -m "$ROOT/python/Cargo.toml" -o "$OUT"
WHEEL="$(ls "$OUT"/biprop-*.whl)"
# The check that the wheel needs no newer glibc than its tag promises.
if ! auditwheel show "$WHEEL" | tr '\n' ' ' \
    | grep -q 'consistent with the following platform tag: *"manylinux_2_17_x86_64"'; then
  auditwheel show "$WHEEL" >&2
  echo "build_wheel: $WHEEL is not manylinux_2_17_x86_64" >&2
  exit 1
fi
echo "$WHEEL"
