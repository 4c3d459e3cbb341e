#!/usr/bin/env bash
# A real one-node Slurm on localhost, and a small sweep through it: the job
# array runs every cell, a task killed with scancel leaves its cell unfinished,
# `biprop report` works while tasks run, and a resubmission runs only what is
# unfinished. Fails with a clear message if Slurm cannot be started.
#   bash .ci/slurm.sh path/to/biprop
set -euo pipefail
BIPROP="$(realpath "$1")"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
die() { echo "slurm test FAILED: $*" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "installing slurm-wlm and munge (Debian packages)"
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null \
    || die "cannot install slurm-wlm and munge"
fi

# munge: the key the package made, or a new one.
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged \
  || die "munged did not start"
munge -n | unmunge >/dev/null || die "munge does not authenticate"

# One node: this machine, all its CPUs and most of its memory.
CPUS="$(nproc)"
MEM="$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 3 / 4 ))"
SPOOL=/var/spool/slurm-ci
mkdir -p "$SPOOL/ctld" "$SPOOL/d" /var/log/slurm /etc/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=biprop-ci
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
NodeName=localhost CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=ci Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
pkill -x slurmctld || true
pkill -x slurmd || true
sleep 1
/usr/sbin/slurmctld -i || die "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
/usr/sbin/slurmd || die "slurmd did not start (see /var/log/slurm/slurmd.log)"
for _ in $(seq 60); do
  sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' && break
  sleep 1
done
sinfo -h -o %t | grep -qE '^(idle|mix|alloc)' \
  || die "the node never came up: $(sinfo 2>&1; tail -5 /var/log/slurm/slurmd.log)"
echo "slurm is up: $(sinfo -h -o '%P %D %t %c')"

WORK="$(mktemp -d)"
trap 'scancel -u root >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
cat > "$WORK/small.toml" <<TOML
out = "$WORK/out"
[base]
dataset = "idx"
classes = 10
data_dir = "$ROOT/tests/data/mnist-subset"
val_size = 1000
hidden = [128]
lr = 0.05
momentum = 0.9
alignment = false
[grid]
rule = ["bp", "fa", "dfa"]
epochs = [1, 300]
TOML
# Cells: epochs 1 for bp, fa, dfa (0-2), then epochs 300 (3-5); cell 3 (bp,
# 300 epochs) is the one killed, once it has checkpointed two epochs.

wait_for_array() {  # job id, timeout seconds
  local t=0
  while squeue -h -j "$1" 2>/dev/null | grep -q .; do
    sleep 2; t=$((t + 2))
    [ "$t" -lt "$2" ] || die "job $1 still running after $2 s: $(squeue -j "$1")"
  done
}

submit() { "$BIPROP" sweep "$WORK/small.toml" --slurm --submit --job-name ci-sweep "$@" | tee "$WORK/submit.log"; \
  awk '/^submitted job/ {print $3}' "$WORK/submit.log" | tr -d ';'; }

JOB="$(submit --time 10 | tail -1)"
[ -n "$JOB" ] || die "no job id from sbatch"
grep -q "cells 0-5" "$WORK/submit.log" || die "the first array should hold cells 0-5: $(cat "$WORK/submit.log")"
# Kill cell 3 once it is running, then report while the array is still going.
t=0
until squeue -h -j "${JOB}_3" -t R 2>/dev/null | grep -q .; do
  sleep 1; t=$((t + 1)); [ "$t" -lt 300 ] || die "task 3 never started: $(squeue)"
done
CSV="$WORK/out/runs/epochs-300_rule-bp/metrics.csv"
t=0
until [ -f "$CSV" ] && [ "$(wc -l < "$CSV")" -ge 3 ]; do
  sleep 0.5; t=$((t + 1)); [ "$t" -lt 600 ] || die "cell 3 never trained two epochs"
done
scancel "${JOB}_3"
"$BIPROP" report "$WORK/out" > "$WORK/report-running.md" || die "report failed while tasks ran"
wait_for_array "$JOB" 900
"$BIPROP" sweep "$WORK/small.toml" --list | tee "$WORK/list.txt"
grep -qE '^ +3 +[0-9]+/300 epochs' "$WORK/list.txt" || die "the cancelled cell 3 should be started, not done"
grep -q '6 cells: 5 done, 0 diverged, 1 started, 0 not started' "$WORK/list.txt" || die "--list should count the cells"
[ "$(grep -c ' done ' "$WORK/list.txt")" = 5 ] || die "cells other than 3 should be done"
"$BIPROP" report "$WORK/out" | grep -q "unfinished (1)" || die "report should show cell 3 unfinished"

JOB2="$(submit --time 10 | tail -1)"
grep -q "(1 task(s): cells 3)" "$WORK/submit.log" || die "the resubmission should hold cell 3 only: $(cat "$WORK/submit.log")"
wait_for_array "$JOB2" 900
"$BIPROP" sweep "$WORK/small.toml" --list | tee "$WORK/list.txt"
[ "$(grep -c ' done ' "$WORK/list.txt")" = 6 ] || die "every cell should be done after the resubmission"
"$BIPROP" sweep "$WORK/small.toml" --slurm | grep -q "nothing to submit" || die "a finished sweep has nothing to submit"
"$BIPROP" report "$WORK/out"
echo "slurm test passed: array, scancel, report while running, resubmission"
