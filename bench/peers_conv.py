"""Peer comparison on a convolutional network: one training step of
biotorch's LeNet for CIFAR-10 (`--net lenet-cifar`) with backpropagation,
PyTorch (CPU, its convolutions on oneDNN) and JAX (XLA:CPU, one jitted step)
against biprop, in one run.

Usage (from the repository root, in a venv with torch, jax and the biprop wheel):

    python bench/peers_conv.py [--threads 2] [--batch 128] [--steps 30] [--repeats 5]
        [--frameworks torch,jax,biprop]

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
is against the faster. JAX has no thread-count setting (bench/peers.py says
why): its subprocess is pinned to the first T cores when T is below the
usable cores; its step is one jax.jit of forward, backward and PyTorch's SGD
update, timed to block_until_ready.
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
    # The network is defined once, with the experiment that trains it.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "experiments"))
    from torch_lenet_cifar import lenet_cifar

    model = lenet_cifar()
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


def run_jax(threads, n, steps):
    cpus = sorted(os.sched_getaffinity(0))
    if threads < len(cpus):
        os.sched_setaffinity(0, cpus[:threads])
    import jax
    import jax.numpy as jnp
    from jax import lax

    keys = iter(jax.random.split(jax.random.PRNGKey(0), 8))

    def uniform(shape, fan_in):
        b = 1.0 / np.sqrt(fan_in)
        return jax.random.uniform(next(keys), shape, jnp.float32, -b, b)

    convs = [(32, 3), (64, 32), (128, 64)]
    params = [(uniform((o, i, 5, 5), i * 25), jnp.zeros(o)) for o, i in convs]
    params += [(uniform((84, 128), 128), jnp.zeros(84)), (uniform((10, 84), 84), jnp.zeros(10))]

    def forward(p, x):
        for k, (w, b) in enumerate(p[:3]):
            x = lax.conv_general_dilated(x, w, (1, 1), "VALID",
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
            x = jax.nn.relu(x + b[None, :, None, None])
            if k < 2:
                x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        x = x.reshape(x.shape[0], -1)
        for w, b in p[3:]:
            x = x @ w.T + b
        return x

    def loss(p, x, y):
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(forward(p, x)), y[:, None], 1))

    @jax.jit
    def step(p, m, x, y):
        g = jax.grad(loss)(p, x, y)
        # PyTorch's SGD: decay added to the gradient, then momentum.
        g = jax.tree.map(lambda g, w: g + 1e-4 * w, g, p)
        m = jax.tree.map(lambda m, g: 0.9 * m + g, m, g)
        return jax.tree.map(lambda w, m: w - 0.01 * m, p, m), m

    x, y = batch(n)
    x, y = jnp.asarray(x), jnp.asarray(y)
    m = jax.tree.map(jnp.zeros_like, params)
    times = []
    for k in range(steps + 5):
        t = time.perf_counter()
        params, m = jax.block_until_ready(step(params, m, x, y))
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
    ap.add_argument("--frameworks", default="torch,jax,biprop",
                    help="comma-separated: torch (both waiting policies), jax, biprop")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        run = {"torch": run_torch, "jax": run_jax, "biprop": run_biprop}[a.worker.split("-")[0]]
        print(json.dumps(run(a.threads, a.batch, a.steps)))
        return
    asked = a.frameworks.split(",")
    unknown = set(asked) - {"torch", "jax", "biprop"}
    if unknown or "biprop" not in asked:
        sys.exit(f"--frameworks: choose from torch, jax, biprop (biprop included), got {a.frameworks}")
    names = [n for f in asked for n in (["torch-default", "torch-active"] if f == "torch" else [f])]
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
    print(f"lenet-cifar BP step, batch {a.batch}, {a.threads} threads, "
          f"median of {a.repeats} x {a.steps} steps")
    print("| framework | ms/step | samples/s | ratio to biprop |")
    print("|---|---|---|---|")
    for k in names:
        print(f"| {k} | {1e3 * med[k]:.1f} | {a.batch / med[k]:.0f} | {med[k] / med['biprop']:.2f} |")
    if "torch" in asked:
        best_torch = min(med["torch-default"], med["torch-active"])
        print(f"biprop against the faster torch: {best_torch / med['biprop']:.2f}x its speed")
    if "jax" in asked:
        print(f"biprop against jax: {med['jax'] / med['biprop']:.2f}x its speed")


if __name__ == "__main__":
    main()
