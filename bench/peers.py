"""Peer comparison: the same MLP trained by PyTorch, JAX and biprop, in one run.

Usage (from the repository root; bench/peers.sh makes the venv first):

    BIPROP_DATA=/path/to/data bench/peers.sh [--epochs 3] [--hidden 800,800]
        [--threads 2] [--frameworks torch,jax,biprop] [--repeats 1]

    bench/peers.sh --epochs 1 --hidden 100          # cheap smoke test

MNIST comes from the IDX .gz files in $BIPROP_DATA/mnist/ (or $BIPROP_DATA).
Every framework trains the same network on the same data: the first 50,000
training images scaled to [0, 1]; 784-H..-10 MLP, tanh hidden units, sigmoid
outputs with binary cross-entropy summed over the 10 outputs and averaged over
the batch; plain SGD, lr 0.0128 on the mean gradient, batch 128 (the last,
partial batch of 80 is used), float32, every weight and bias from
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (as biprop does), reshuffled every epoch.

Each framework trains 1 untimed warm-up epoch (JIT compilation, caches, page
faults) and then --epochs timed epochs; only the training loop is timed
(shuffling and batch gathering included, evaluation excluded). biprop runs
`biprop train -q --rule bp --hidden 2x800 --epochs N+1 --threads T` and its
first row of metrics.csv is dropped the same way, so every framework has seen
N+1 epochs when its test error is printed. --frameworks jax runs two variants:

  jax-step  one jax.jit-compiled SGD step called once per batch (the last,
            partial batch compiles a second step during the warm-up epoch);
  jax-scan  the whole epoch as one jitted lax.scan over pre-shuffled batches.
            The scan needs equal batches, so the last partial batch is DROPPED
            (390 x 128 = 49,920 samples per epoch, not 50,000); its GFLOP/s
            counts the samples it really trained on.

Every (framework, repeat) runs in its own subprocess, and the frameworks are
alternated --repeats times, so that all of them see the same machine load; the
table gives the median over every timed epoch of every repeat. The ratio is
that framework's seconds per epoch over biprop's (> 1: slower than biprop).

Threads (--threads T):
  torch   torch.set_num_threads(T) (and set_num_interop_threads(1)). How
          libgomp's idle threads wait decides much of torch's speed here, so
          --frameworks torch runs it twice and the table has both:
            torch-default  OMP_WAIT_POLICY unset: libgomp spins a while, then
                           sleeps (the out-of-the-box torch);
            torch-active   OMP_WAIT_POLICY=ACTIVE: idle threads always spin,
                           the fastest torch on an otherwise idle machine.
          torch-passive (OMP_WAIT_POLICY=PASSIVE, threads sleep at once) can
          be asked for by name. Spinning threads are fast only while nothing
          else wants the cores: with another process on one of the 2 cores,
          libgomp's default spinning made 2 threads ~90x slower per step.
          biprop's ratio is given against the fastest torch of the table.
  jax     XLA:CPU has no thread-count flag in current jaxlib: XLA_FLAGS like
          "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
          are accepted but change nothing (checked with per-thread CPU time on
          jax 0.10.2), and unknown --xla flags abort. XLA sizes its thread pool
          from the CPU affinity mask, so when T is below the number of usable
          cores the jax subprocess is pinned to the first T of them with
          os.sched_setaffinity before jax is imported. When T >= the usable
          cores (the default 2 on a 2-core machine) nothing is restricted.
  biprop  --threads T.
"""

import argparse
import gzip
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
LR = 0.0128
BATCH = 128
N_TRAIN = 50_000
SEED = 1


# ---------------------------------------------------------------- data ----

def data_dir():
    root = os.environ.get("BIPROP_DATA")
    if not root:
        sys.exit("peers.py: set BIPROP_DATA to the folder holding mnist/ (or the MNIST files)")
    root = Path(root)
    for d in (root / "mnist", root):
        if (d / "train-images-idx3-ubyte.gz").exists():
            return d.resolve()
    sys.exit(f"peers.py: no train-images-idx3-ubyte.gz in {root}/mnist or {root}")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist():
    d = data_dir()
    xs = read_idx(d / "train-images-idx3-ubyte.gz")[:N_TRAIN].reshape(N_TRAIN, -1)
    ys = read_idx(d / "train-labels-idx1-ubyte.gz")[:N_TRAIN]
    xt = read_idx(d / "t10k-images-idx3-ubyte.gz")
    yt = read_idx(d / "t10k-labels-idx1-ubyte.gz")
    xs = xs.astype(np.float32) / 255.0
    xt = xt.reshape(len(xt), -1).astype(np.float32) / 255.0
    onehot = np.eye(10, dtype=np.float32)[ys]
    return xs, onehot, xt, yt.astype(np.int64)


def init_params(sizes, rng):
    """Weights (fan_in x fan_out) and biases from U(+-1/sqrt(fan_in))."""
    params = []
    for fi, fo in zip(sizes[:-1], sizes[1:]):
        b = 1.0 / np.sqrt(fi)
        params.append((rng.uniform(-b, b, (fi, fo)).astype(np.float32),
                       rng.uniform(-b, b, fo).astype(np.float32)))
    return params


def permutations(epochs):
    rng = np.random.default_rng(SEED + 1)
    return [rng.permutation(N_TRAIN) for _ in range(epochs)]


# -------------------------------------------------------------- torch ----

def run_torch(sizes, epochs, threads, wait_policy):
    # libgomp reads the policy when it is loaded, so it is set before torch
    # is imported. None leaves libgomp's default (spin a while, then sleep).
    if wait_policy is None:
        os.environ.pop("OMP_WAIT_POLICY", None)
    else:
        os.environ["OMP_WAIT_POLICY"] = wait_policy
    import torch
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    xs, ys, xt, yt = load_mnist()
    X, Y = torch.from_numpy(xs), torch.from_numpy(ys)
    params = []
    for w, b in init_params(sizes, np.random.default_rng(SEED)):
        params += [torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)]
    opt = torch.optim.SGD(params, lr=LR)
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def forward(x):
        for i in range(0, len(params) - 2, 2):
            x = torch.tanh(torch.addmm(params[i + 1], x, params[i]))
        return torch.addmm(params[-1], x, params[-2])

    times = []
    for perm in permutations(epochs + 1):
        perm = torch.from_numpy(perm)
        t0 = time.perf_counter()
        for s in range(0, N_TRAIN, BATCH):
            idx = perm[s:s + BATCH]
            x, y = X[idx], Y[idx]
            loss = bce(forward(x), y, reduction="sum") / len(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        err = (forward(torch.from_numpy(xt)).argmax(1).numpy() != yt).mean()
    return dict(times=times[1:], test_error=float(err), samples=N_TRAIN,
                version=f"torch {torch.__version__} OMP_WAIT_POLICY={wait_policy or '(unset)'}")


# ---------------------------------------------------------------- jax ----

def pin_for_jax(threads):
    cpus = sorted(os.sched_getaffinity(0))
    if threads < len(cpus):
        os.sched_setaffinity(0, cpus[:threads])


def run_jax(sizes, epochs, threads, scan):
    pin_for_jax(threads)
    import jax
    import jax.numpy as jnp

    xs, ys, xt, yt = load_mnist()
    X, Y = jnp.asarray(xs), jnp.asarray(ys)
    params = [(jnp.asarray(w), jnp.asarray(b))
              for w, b in init_params(sizes, np.random.default_rng(SEED))]

    def forward(params, x):
        for w, b in params[:-1]:
            x = jnp.tanh(x @ w + b)
        w, b = params[-1]
        return x @ w + b

    def loss_fn(params, x, y):
        z = forward(params, x)
        # BCE with logits, summed over outputs, mean over the batch
        return jnp.sum(jax.nn.softplus(z) - y * z) / x.shape[0]

    def sgd(params, X, Y, idx):  # data as arguments, not as baked-in constants
        g = jax.grad(loss_fn)(params, X[idx], Y[idx])
        return jax.tree_util.tree_map(lambda p, d: p - LR * d, params, g)

    if scan:
        nb = N_TRAIN // BATCH  # last partial batch dropped

        @jax.jit
        def epoch(params, X, Y, idx):
            return jax.lax.scan(lambda p, i: (sgd(p, X, Y, i), None), params, idx)[0]

        def run_epoch(params, perm):
            idx = jnp.asarray(perm[:nb * BATCH].reshape(nb, BATCH).astype(np.int32))
            return epoch(params, X, Y, idx)
        samples = nb * BATCH
    else:
        step = jax.jit(sgd, donate_argnums=0)

        def run_epoch(params, perm):
            perm = perm.astype(np.int32)  # numpy slices: one small transfer per step
            for s in range(0, N_TRAIN, BATCH):
                params = step(params, X, Y, perm[s:s + BATCH])
            return params
        samples = N_TRAIN

    times = []
    for perm in permutations(epochs + 1):
        t0 = time.perf_counter()
        params = run_epoch(params, perm)
        jax.block_until_ready(params)
        times.append(time.perf_counter() - t0)
    err = (np.asarray(jax.jit(forward)(params, jnp.asarray(xt))).argmax(1) != yt).mean()
    return dict(times=times[1:], test_error=float(err), samples=samples,
                version=f"jax {jax.__version__}")


# ------------------------------------------------------------- biprop ----

def run_biprop(sizes, epochs, threads):
    binary = Path(os.environ.get("BIPROP_BIN", REPO / "target/release/biprop"))
    if not binary.exists():
        raise FileNotFoundError(f"{binary} missing (cargo build --release, or set BIPROP_BIN)")
    hidden = ",".join(map(str, sizes[1:-1]))
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(binary), "train", "-q", "--rule", "bp", "--hidden", hidden,
               "--epochs", str(epochs + 1), "--threads", str(threads),
               "--data-dir", str(data_dir()), "--out", tmp, "--force"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        lines = (Path(tmp) / "metrics.csv").read_text().split("\n")
    header = lines[0].split(",")
    rows = [dict(zip(header, l.split(","))) for l in lines[1:] if l.strip()]
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    return dict(times=[float(r["train_seconds"]) for r in rows[1:]],
                test_error=float(rows[-1]["test_error"]), samples=N_TRAIN,
                version=(out.stdout.strip() or "biprop"))


# -------------------------------------------------------------- driver ----

WORKERS = {
    "torch-default": lambda s, e, t: run_torch(s, e, t, None),
    "torch-active": lambda s, e, t: run_torch(s, e, t, "ACTIVE"),
    "torch-passive": lambda s, e, t: run_torch(s, e, t, "PASSIVE"),
    "jax-step": lambda s, e, t: run_jax(s, e, t, scan=False),
    "jax-scan": lambda s, e, t: run_jax(s, e, t, scan=True),
    "biprop": lambda s, e, t: run_biprop(s, e, t),
}

ALIASES = {"torch": ["torch-default", "torch-active"], "jax": ["jax-step", "jax-scan"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs (plus 1 warm-up)")
    ap.add_argument("--hidden", default="800,800", help="hidden widths, comma-separated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frameworks", default="torch,jax,biprop",
                    help="any of torch (= torch-default,torch-active), torch-default, "
                         "torch-active, torch-passive, jax (= jax-step,jax-scan), jax-step, "
                         "jax-scan, biprop")
    ap.add_argument("--repeats", type=int, default=1, help="alternate the frameworks R times")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    sizes = [784] + [int(h) for h in a.hidden.split(",")] + [10]

    if a.worker:  # one measurement, in its own process; JSON on the last line
        print(json.dumps(WORKERS[a.worker](sizes, a.epochs, a.threads)))
        return

    names = []
    for f in a.frameworks.split(","):
        for n in ALIASES.get(f, [f]):
            if n not in WORKERS:
                sys.exit(f"peers.py: unknown framework {n!r}")
            names.append(n)
    data_dir()  # fail early

    results = {n: dict(times=[], errors=[]) for n in names}
    for r in range(a.repeats):
        for n in names:
            cmd = [sys.executable, __file__, "--worker", n, "--epochs", str(a.epochs),
                   "--hidden", a.hidden, "--threads", str(a.threads)]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                print(f"{n}: FAILED (repeat {r + 1})\n{p.stderr.strip()[-2000:]}", file=sys.stderr)
                continue
            res = json.loads(p.stdout.strip().split("\n")[-1])
            results[n]["times"] += res["times"]
            results[n]["errors"].append(res["test_error"])
            results[n]["samples"] = res["samples"]
            results[n]["version"] = res["version"]
            print(f"  repeat {r + 1}/{a.repeats} {n:8s} epochs "
                  + " ".join(f"{t:.2f}" for t in res["times"]) + " s", file=sys.stderr)

    # FLOPs per epoch = 6 * (weights) * samples: 2 per weight per sample for
    # the forward matmul, 4 for backward (2 for the input gradient, 2 for the
    # weight gradient). Biases, activations, loss and the update are ignored.
    n_weights = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    med = {n: statistics.median(v["times"]) for n, v in results.items() if v["times"]}
    base = med.get("biprop")
    print(f"MLP {'-'.join(map(str, sizes))}, {n_weights:,} weights, batch {BATCH}, "
          f"lr {LR}, threads {a.threads}, {a.epochs} timed epoch(s) x {a.repeats} repeat(s)")
    print(f"{'framework':14s} {'s/epoch':>8s} {'GFLOP/s':>8s} {'x biprop':>9s} "
          f"{'test err':>9s} {'n':>3s}  version")
    for n, v in results.items():
        if n not in med:
            print(f"{n:14s} {'failed':>8s}")
            continue
        gflops = 6 * n_weights * v["samples"] / med[n] / 1e9
        ratio = f"{med[n] / base:9.2f}" if base else f"{'-':>9s}"
        err = statistics.median(v["errors"])
        print(f"{n:14s} {med[n]:8.3f} {gflops:8.1f} {ratio} {100 * err:8.2f}% "
              f"{len(v['times']):3d}  {v['version']}")
    torches = [n for n in med if n.startswith("torch")]
    if base and torches:
        best = min(torches, key=med.get)
        print(f"biprop is {med[best] / base:.2f}x faster than the fastest torch ({best})")


if __name__ == "__main__":
    main()
