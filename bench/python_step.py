"""A Python loop of ``biprop.Trainer.step`` against the CLI's epoch, in one command.

    BIPROP_DATA=... python bench/python_step.py [--rule bp] [--hidden 2x800] [--epochs 3] [--repeats 3]

Both train on the same 50,000 MNIST training images, batch 128, on
``--threads`` threads (default 2). Rounds alternate the three ways so that a
slow spell of a shared machine hits them alike:

* ``cli``: ``biprop train``, the ``train_seconds`` of its epochs (training
  only, as ``metrics.csv`` records it);
* ``step loop``: a Python loop over the epoch in a NumPy permutation, each
  batch gathered with ``x[idx]`` (as the CLI gathers its batches) and given
  to ``Trainer.step``;
* ``fit_epoch``: ``Trainer.fit_epoch`` (the loop in Rust, gathering rows).

Prints the median seconds per epoch of each and the ratio to the CLI.
Needs the package (``pip install ./python``) and the release CLI
(``cargo build --release``; ``--bin`` to name another).
"""

import argparse
import gzip
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import biprop

REPO = Path(__file__).resolve().parents[1]


def idx(path: Path) -> np.ndarray:
    raw = gzip.open(path).read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rule", default="bp")
    p.add_argument("--hidden", default="2x800")
    p.add_argument("--epochs", type=int, default=2, help="epochs a round, each way")
    p.add_argument("--repeats", type=int, default=8, help="rounds")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "biprop")
    args = p.parse_args()
    data = Path(os.environ["BIPROP_DATA"]) / "mnist"
    # The CLI's training split: the first 50,000 images (the last 10,000 validate).
    x = idx(data / "train-images-idx3-ubyte.gz").reshape(-1, 784)[:50_000].astype(np.float32) / 255.0
    y = idx(data / "train-labels-idx1-ubyte.gz")[:50_000].astype(np.int64)
    if "x" in args.hidden:  # 2x800
        count, width = args.hidden.split("x")
        widths = [int(width)] * int(count)
    else:  # 800,400
        widths = [int(w) for w in args.hidden.split(",")]
    settings = dict(rule=args.rule, lr=0.0128, batch_size=128, threads=args.threads)
    times = {"cli": [], "step loop": [], "fit_epoch": []}
    # One trainer a way for every round: warm, as the CLI's run is after its first epoch.
    stepper = biprop.Trainer([784, *widths, 10], **settings)
    fitter = biprop.Trainer([784, *widths, 10], **settings)
    rng = np.random.default_rng(0)
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [str(args.bin), "train", "-q", "--rule", args.rule, "--hidden", args.hidden,
                 "--epochs", str(args.epochs), "--threads", str(args.threads), "--no-alignment",
                 "--out", tmp],
                check=True, env=dict(os.environ),
            )
            lines = (Path(tmp) / "metrics.csv").read_text().splitlines()
            col = lines[0].split(",").index("train_seconds")
            times["cli"] += [float(l.split(",")[col]) for l in lines[1:]]
        for _ in range(args.epochs):
            start = time.perf_counter()
            perm = rng.permutation(len(x))
            for i in range(0, len(x), 128):
                batch = perm[i : i + 128]
                stepper.step(x[batch], y[batch])
            times["step loop"].append(time.perf_counter() - start)
        for _ in range(args.epochs):
            start = time.perf_counter()
            fitter.fit_epoch(x, y)
            times["fit_epoch"].append(time.perf_counter() - start)
        print(f"round {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in times.items()), flush=True)
    cli = statistics.median(times["cli"])
    print(f"\n{args.rule} 784-{args.hidden}-10, batch 128, {args.threads} threads, "
          f"median of {args.epochs * args.repeats} epochs each")
    print("| way | s/epoch | vs CLI |\n|---|---|---|")
    for k, v in times.items():
        m = statistics.median(v)
        print(f"| {k} | {m:.3f} | {m / cli:.3f} |")


if __name__ == "__main__":
    main()
