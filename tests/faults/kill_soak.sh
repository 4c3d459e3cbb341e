#!/usr/bin/env bash
# SIGKILL soak: a small sweep (4 cells of MNIST-subset runs, two at a time)
# is killed with SIGKILL at random moments and resumed after each kill, in
# rounds that each start from an empty folder, until at least KILLS kills
# have landed on a running sweep. Every round must end bitwise where an
# uninterrupted sweep of the same file ends (checkpoint tensors and
# metadata, metrics without the timing columns, done files) and leave no
# temp file behind.
#   bash tests/faults/kill_soak.sh path/to/biprop [KILLS]   (default 24)
set -euo pipefail
BIPROP="$(realpath "$1")"
KILLS="${2:-24}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUNS="$ROOT/tests/faults/runs.py"
die() { echo "kill soak FAILED: $*" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cat > "$WORK/sweep.toml" <<TOML
[base]
dataset = "idx"
classes = 10
data_dir = "$ROOT/tests/data/mnist-subset"
hidden = [64]
epochs = 12
train_limit = 1000
val_size = 500
[grid]
rule = ["bp", "fa", "dfa", "bfa"]
TOML
# Called directly (not through a function) when backgrounded, so that $!
# is biprop's own pid and the SIGKILL reaches it, not a subshell.
SWEEP=(sweep "$WORK/sweep.toml" --jobs 2 --quiet --out)
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

t0="$(now_ms)"
"$BIPROP" "${SWEEP[@]}" "$WORK/ref" > "$WORK/ref.log" 2>&1 || { cat "$WORK/ref.log"; die "the uninterrupted sweep failed"; }
span=$(( $(now_ms) - t0 ))
# Kill moments drawn over the uninterrupted sweep's length (and a little
# beyond), so that kills land in start-up, training, and every write.
span=$(( span * 11 / 10 + 1 ))

landed=0 rounds=0 resumes=0 mid_write=0 ahead=0 cut=0
while [ "$landed" -lt "$KILLS" ]; do
  rounds=$((rounds + 1))
  [ "$rounds" -le 200 ] || die "only $landed kills landed in 200 rounds"
  out="$WORK/round$rounds"
  while :; do
    resumes=$((resumes + 1))
    "$BIPROP" "${SWEEP[@]}" "$out" > "$WORK/run.log" 2>&1 &
    pid=$!
    ms=$(( (RANDOM * 32768 + RANDOM) % span ))
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    if kill -KILL "$pid" 2>/dev/null; then
      rc=0; { wait "$pid"; } 2>/dev/null || rc=$?
      if [ "$rc" -eq 137 ]; then
        landed=$((landed + 1))
        read -r t a c < <(python3 "$RUNS" state "$out" "$pid")
        [ "$t" -gt 0 ] && mid_write=$((mid_write + 1))
        [ "$a" -gt 0 ] && ahead=$((ahead + 1))
        [ "$c" -gt 0 ] && cut=$((cut + 1))
        continue
      fi
    else
      rc=0; wait "$pid" || rc=$?
    fi
    [ "$rc" -eq 0 ] || { cat "$WORK/run.log"; die "round $rounds: a resumed sweep failed (exit $rc)"; }
    break
  done
  python3 "$RUNS" same "$WORK/ref" "$out" > /dev/null || die "round $rounds differs from the uninterrupted sweep"
  left="$(find "$out" -name '.*.tmp*' | wc -l)"
  [ "$left" -eq 0 ] || die "round $rounds left $left temp file(s): $(find "$out" -name '.*.tmp*')"
  rm -rf "$out"
done
echo "kill soak: $landed SIGKILLs over $rounds rounds ($resumes sweep starts; $mid_write cut a write short (temp file left), $ahead left metric rows ahead of the checkpoint, $cut mid-row): every round bitwise the uninterrupted sweep (4 cells), no temp file left"
