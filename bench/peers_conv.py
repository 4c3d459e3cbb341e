"""Peer comparison on a convolutional network: one training step of
biotorch's LeNet for CIFAR-10 (`--net lenet-cifar`) with backpropagation,
PyTorch (CPU, its convolutions on oneDNN) against biprop, in one run.

Usage (from the repository root, in a venv with torch and the biprop wheel):

    python bench/peers_conv.py [--threads 2] [--batch 128] [--steps 30] [--repeats 5]

Both train the same network on the same random batch: 3x32x32 inputs,
conv 32 5x5, ReLU, max-pool 2, conv 64 5x5, ReLU, max-pool 2, conv 128 5x5,
ReLU, flatten, dense 84, dense 10, softmax cross-entropy, SGD with momentum
0.9 and weight decay 1e-4 (biotorch's benchmark optimizer), float32. A step
is forward, backward and the update. Each framework runs in its own
subprocess, after 5 untimed steps; the frameworks alternate --repeats times
so that both see the same machine load, and the table gives the median step
over every timed step of every repeat. torch runs with
torch.set_num_threads(T) and OMP_WAIT_POLICY unset (its default) and ACTIVE
(idle threads spin: its fastest on an otherwise idle machine); biprop's ratio
is against the faster.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def batch(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int64)
    return x, y


def run_torch(threads, n, steps):
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(3, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(128, 84), nn.Linear(84, 10),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    x, y = batch(n)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    times = []
    for k in range(steps + 5):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if k >= 5:
            times.append(time.perf_counter() - t)
    return times


def run_biprop(threads, n, steps):
    import biprop

    t = biprop.Trainer(net="lenet-cifar", rule="bp", output="softmax-ce", lr=0.01,
                       momentum=0.9, weight_decay=1e-4, batch_size=n, threads=threads)
    x, y = batch(n)
    times = []
    for k in range(steps + 5):
        s = time.perf_counter()
        t.step(x, y)
        if k >= 5:
            times.append(time.perf_counter() - s)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        run = run_torch if a.worker.startswith("torch") else run_biprop
        print(json.dumps(run(a.threads, a.batch, a.steps)))
        return
    names = ["torch-default", "torch-active", "biprop"]
    times = {k: [] for k in names}
    for _ in range(a.repeats):
        for name in names:
            env = dict(os.environ)
            env.pop("OMP_WAIT_POLICY", None)
            if name == "torch-active":
                env["OMP_WAIT_POLICY"] = "ACTIVE"
            out = subprocess.run(
                [sys.executable, __file__, "--worker", name, "--threads", str(a.threads),
                 "--batch", str(a.batch), "--steps", str(a.steps)],
                env=env, check=True, capture_output=True, text=True,
            ).stdout
            times[name] += json.loads(out.strip().splitlines()[-1])
    med = {k: statistics.median(v) for k, v in times.items()}
    best_torch = min(med["torch-default"], med["torch-active"])
    print(f"lenet-cifar BP step, batch {a.batch}, {a.threads} threads, "
          f"median of {a.repeats} x {a.steps} steps")
    print("| framework | ms/step | samples/s | ratio to biprop |")
    print("|---|---|---|---|")
    for k in names:
        print(f"| {k} | {1e3 * med[k]:.1f} | {a.batch / med[k]:.0f} | {med[k] / med['biprop']:.2f} |")
    print(f"biprop against the faster torch: {best_torch / med['biprop']:.2f}x its speed")


if __name__ == "__main__":
    main()
