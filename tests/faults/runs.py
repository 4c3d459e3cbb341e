#!/usr/bin/env python3
"""Helpers of the fault scripts (standard library only).

    runs.py same REF OUT    every run under REF/runs is bitwise the one under
                            OUT/runs: checkpoint tensors and metadata (the
                            thread count aside), metrics without the timing
                            columns, done file (if any)
    runs.py same-run A B    the same for two run folders
    runs.py state DIR PID   one line: how process PID left the runs under
                            DIR/runs: its temp files, runs with metric rows
                            ahead of the checkpoint, rows cut short
"""
import csv
import io
import json
import struct
import sys
from pathlib import Path

TIMINGS = ("train_seconds", "seconds")


def safetensors(path):
    """(metadata, {name: (dtype, shape, bytes)}) of a safetensors file."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n :]
    tensors = {
        k: (v["dtype"], v["shape"], data[v["data_offsets"][0] : v["data_offsets"][1]])
        for k, v in header.items()
    }
    return meta, tensors


def csv_rows(path):
    """metrics.csv as rows of (column, text), timing columns left out."""
    rows = list(csv.reader(io.StringIO(path.read_text())))
    header, body = rows[0], rows[1:]
    keep = [i for i, k in enumerate(header) if k not in TIMINGS]
    return [header[i] for i in keep], [[r[i] for i in keep] for r in body]


def jsonl_rows(path):
    out = []
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        for k in TIMINGS:
            obj.pop(k, None)
        out.append(obj)
    return out


def settings(config):
    """A run's TOML without `threads`: a resumed sweep cell runs on as many
    threads as its sweep then gives it (more once fewer cells are left),
    which changes no bit of its results."""
    if config is None:
        return None
    return [l for l in config.splitlines() if not l.startswith("threads =")]


def differences(a, b):
    """What differs between run folders a and b (empty when bitwise the same)."""
    diffs = []
    ma, ta = safetensors(a / "checkpoint.safetensors")
    mb, tb = safetensors(b / "checkpoint.safetensors")
    if ta.keys() != tb.keys():
        diffs.append(f"tensor names {sorted(ta)} vs {sorted(tb)}")
    for k in sorted(ta.keys() & tb.keys()):
        if ta[k] != tb[k]:
            diffs.append(f"tensor {k}")
    for k in sorted(ma.keys() | mb.keys()):
        if k == "sha256":
            # A digest of the tensors and the other metadata, compared
            # here one by one.
            continue
        if k == "config":
            if settings(ma.get(k)) != settings(mb.get(k)):
                diffs.append("metadata config")
        elif ma.get(k) != mb.get(k):
            diffs.append(f"metadata {k}")
    if csv_rows(a / "metrics.csv") != csv_rows(b / "metrics.csv"):
        diffs.append("metrics.csv")
    if jsonl_rows(a / "metrics.jsonl") != jsonl_rows(b / "metrics.jsonl"):
        diffs.append("metrics.jsonl")
    done_a, done_b = a / "done", b / "done"
    if (done_a.exists() or done_b.exists()) and (
        not done_a.exists() or not done_b.exists() or done_a.read_bytes() != done_b.read_bytes()
    ):
        diffs.append("done")
    return diffs


def same(ref, out):
    cells = sorted(p.name for p in (ref / "runs").iterdir())
    got = sorted(p.name for p in (out / "runs").iterdir())
    if cells != got:
        sys.exit(f"cells differ: {cells} vs {got}")
    bad = 0
    for c in cells:
        d = differences(ref / "runs" / c, out / "runs" / c)
        if d:
            bad += 1
            print(f"{c}: differs from the reference: {', '.join(d)}", file=sys.stderr)
    if bad:
        sys.exit(1)
    print(len(cells))


def state(out, pid):
    """Counts of PID's temp files, of runs with metric rows beyond the
    checkpoint's epoch, and of metrics files whose last row is cut short."""
    temps = ahead = cut = 0
    runs = out / "runs"
    for d in sorted(runs.iterdir()) if runs.is_dir() else []:
        temps += sum(1 for p in d.iterdir() if p.name.startswith(".") and p.name.endswith(f".tmp{pid}"))
        ck = d / "checkpoint.safetensors"
        epoch = int(safetensors(ck)[0].get("epoch", 0)) if ck.exists() else 0
        for name, extra in (("metrics.csv", 1), ("metrics.jsonl", 0)):
            p = d / name
            if not p.exists():
                continue
            text = p.read_bytes()
            if text and not text.endswith(b"\n"):
                cut += 1
            if len(text.splitlines()) > epoch + extra:
                ahead += 1
    print(f"{temps} {ahead} {cut}")


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "same":
        same(Path(args[0]), Path(args[1]))
    elif cmd == "same-run":
        d = differences(Path(args[0]), Path(args[1]))
        if d:
            sys.exit(f"{args[1]} differs from {args[0]}: {', '.join(d)}")
    elif cmd == "state":
        state(Path(args[0]), args[1])
    else:
        sys.exit(__doc__)
