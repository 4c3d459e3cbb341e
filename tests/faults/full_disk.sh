#!/usr/bin/env bash
# Full disk: a run resumed from a 3-epoch checkpoint towards 5 epochs while
# a file-size limit (ulimit -f, EFBIG) or a full tmpfs (ENOSPC) stops one of
# its writes (config, metrics or checkpoint). Each must end with one line,
# `error: ...`, exit status 1 (no panic, no SIGXFSZ death), leave the
# checkpoint byte for byte as it was and no temp file, and a resume with
# space again must end bitwise where an uninterrupted 5-epoch run ends. A
# sweep under the limit is checked the same way. The tmpfs part needs root
# or user namespaces; without either it is skipped, and says so.
#   bash tests/faults/full_disk.sh path/to/biprop
set -euo pipefail
BIPROP="$(realpath "$1")"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUNS="$ROOT/tests/faults/runs.py"
die() { echo "full disk test FAILED: $*" >&2; exit 1; }

# Not root and no mount rights: the same script again as root of a user
# namespace of its own, where a tmpfs may be mounted (and vanishes with it).
can_mount() {
  local d; d="$(mktemp -d)"
  if mount -t tmpfs -o size=64k tmpfs "$d" 2>/dev/null; then umount "$d"; rmdir "$d"; return 0; fi
  rmdir "$d"; return 1
}
TMPFS=yes
if ! can_mount; then
  if [ -z "${FULL_DISK_NS:-}" ] && unshare -rm true 2>/dev/null; then
    FULL_DISK_NS=1 exec unshare -rm bash "$0" "$@"
  fi
  TMPFS=no
fi

WORK="$(mktemp -d)"
MNT="$WORK/mnt"
cleanup() { mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"; rm -rf "$WORK"; }
trap cleanup EXIT

DATA=(--dataset idx --classes 10 --data-dir "$ROOT/tests/data/mnist-subset" --hidden 32
      --train-limit 1000 --val-size 500 --quiet)
train() { "$BIPROP" train "${DATA[@]}" "$@"; }
train --epochs 5 --out "$WORK/ref" > /dev/null || die "the uninterrupted run failed"
train --epochs 3 --out "$WORK/base" > /dev/null || die "the 3-epoch run failed"
CK_KIB=$(( $(stat -c %s "$WORK/base/checkpoint.safetensors") / 1024 ))

declare -A failed_on=()
trials=0
# check DIR LOG RC: a clean stop, the 3-epoch checkpoint intact, then a
# resume with space that ends where the uninterrupted run does.
check() {
  local dir="$1" log="$2" rc="$3" what="$4"
  trials=$((trials + 1))
  [ "$rc" -eq 1 ] || { cat "$log"; die "$what: exit status $rc, expected 1"; }
  [ "$(wc -l < "$log")" -eq 1 ] && grep -q '^error: ' "$log" \
    || { cat "$log"; die "$what: not one line 'error: ...'"; }
  ! grep -qiE 'panick|backtrace' "$log" || { cat "$log"; die "$what: a panic"; }
  cmp -s "$WORK/base/checkpoint.safetensors" "$dir/checkpoint.safetensors" \
    || die "$what: the checkpoint changed"
  [ -z "$(find "$dir" -name '.*.tmp*')" ] || die "$what: a temp file was left"
  local file; file="$(sed -E 's/^error: [^ ]*\/([^/: ]+): .*/\1/' "$log")"
  failed_on[$file]=$(( ${failed_on[$file]:-0} + 1 ))
}
resume_and_compare() {
  local dir="$1" what="$2"
  train --epochs 5 --out "$dir" --resume > /dev/null || die "$what: the resume with space failed"
  python3 "$RUNS" same-run "$WORK/ref" "$dir" || die "$what: the resumed run differs"
}

# limited KIB ARGS...: biprop ARGS under a file-size limit of KIB KiB; its
# output in $WORK/log, its exit status in $rc. Through a pipe, not a
# redirection to a file, so that the limit does not stop the error message.
limited() {
  local k="$1"; shift
  set +e
  (ulimit -f "$k"; exec "$BIPROP" "$@") 2>&1 | cat > "$WORK/log"
  rc="${PIPESTATUS[0]}"
  set -e
}

# File-size limits, in KiB: 0 stops the first write (config.toml), 1 the
# metrics of epoch 4, the larger ones its checkpoint.
for k in 0 1 2 4 8 16 32 64 "$((CK_KIB - 1))" "$CK_KIB"; do
  dir="$WORK/ulimit-$k"
  cp -r "$WORK/base" "$dir"
  limited "$k" train "${DATA[@]}" --epochs 5 --out "$dir" --resume
  check "$dir" "$WORK/log" "$rc" "ulimit -f $k"
  resume_and_compare "$dir" "ulimit -f $k"
done
ulimit_trials=$trials

# A sweep stopped by the limit in its first checkpoint, rerun with space.
cat > "$WORK/sweep.toml" <<TOML
[base]
dataset = "idx"
classes = 10
data_dir = "$ROOT/tests/data/mnist-subset"
hidden = [32]
epochs = 3
train_limit = 1000
val_size = 500
[grid]
rule = ["bp", "dfa"]
TOML
"$BIPROP" sweep "$WORK/sweep.toml" --out "$WORK/sweep-ref" --quiet > /dev/null || die "the sweep failed"
limited 64 sweep "$WORK/sweep.toml" --out "$WORK/sweep" --quiet
[ "$rc" -eq 1 ] && [ "$(wc -l < "$WORK/log")" -eq 1 ] && grep -q '^error: run .*not saved' "$WORK/log" \
  || { cat "$WORK/log"; die "sweep under ulimit -f 64: not one clean error (exit $rc)"; }
"$BIPROP" sweep "$WORK/sweep.toml" --out "$WORK/sweep" --quiet > /dev/null || die "the sweep rerun failed"
python3 "$RUNS" same "$WORK/sweep-ref" "$WORK/sweep" > /dev/null || die "the rerun sweep differs"

# A full tmpfs: filled, then F KiB freed again (tmpfs counts 4 KiB pages).
tmpfs_trials=0 tmpfs_completed=0
if [ "$TMPFS" = yes ]; then
  mkdir -p "$MNT"
  mount -t tmpfs -o size=1m tmpfs "$MNT"
  for f in 0 4 8 12 16 24 32 48 64 96; do
    dir="$MNT/run"
    rm -rf "$dir" "$MNT/fill"
    cp -r "$WORK/base" "$dir"
    dd if=/dev/zero of="$MNT/fill" bs=4096 2>/dev/null || true
    [ "$f" -gt 0 ] && truncate -s "-${f}K" "$MNT/fill"
    rc=0
    "$BIPROP" train "${DATA[@]}" --epochs 5 --out "$dir" --resume > "$WORK/log" 2>&1 || rc=$?
    tmpfs_trials=$((tmpfs_trials + 1))
    if [ "$rc" -eq 0 ]; then
      # Enough room after all: it must simply have finished.
      tmpfs_completed=$((tmpfs_completed + 1))
    else
      check "$dir" "$WORK/log" "$rc" "tmpfs with ${f} KiB free"
    fi
    rm -f "$MNT/fill"
    resume_and_compare "$dir" "tmpfs with ${f} KiB free"
  done
  umount "$MNT"
  tmpfs_line="$tmpfs_trials on a full tmpfs ($tmpfs_completed had room to finish)"
else
  tmpfs_line="tmpfs part SKIPPED (cannot mount a tmpfs: not root and no user namespaces)"
fi

stops="$(for f in "${!failed_on[@]}"; do echo "${failed_on[$f]} in $f"; done | sort -k3 | paste -sd, - | sed 's/,/, /g')"
echo "full disk: $ulimit_trials resumes under ulimit -f and $tmpfs_line; every stop one 'error:' line (writes stopped: $stops), checkpoint intact, no temp file, the resume with space bitwise the uninterrupted run; a sweep likewise"
