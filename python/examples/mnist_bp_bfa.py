"""BP and BFA on MNIST from NumPy arrays, with their learning curves.

    pip install ./python matplotlib
    python python/examples/mnist_bp_bfa.py                      # the 6,000-image subset in the clone
    python python/examples/mnist_bp_bfa.py --data ~/data/mnist  # all of MNIST (the four IDX .gz files)

Loads the IDX files with NumPy alone, trains a 784-800-10 network with each
rule for a few epochs on your own loop (``Trainer.fit_epoch``), evaluates on
the test images after every epoch, and plots test error per epoch to
``mnist_bp_bfa.png``.
"""

import argparse
import gzip
import os
from pathlib import Path

import numpy as np

import biprop

HERE = Path(__file__).resolve().parent
SUBSET = HERE.parents[1] / "tests" / "data" / "mnist-subset"


def idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped) as a NumPy array."""
    raw = gzip.open(path).read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist(folder: Path):
    """Training and test images as float32 in [0, 1], labels as int64."""
    def images(name):
        return idx(folder / name).reshape(-1, 784).astype(np.float32) / 255.0
    def labels(name):
        return idx(folder / name).astype(np.int64)
    return (
        images("train-images-idx3-ubyte.gz"),
        labels("train-labels-idx1-ubyte.gz"),
        images("t10k-images-idx3-ubyte.gz"),
        labels("t10k-labels-idx1-ubyte.gz"),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(os.environ["BIPROP_DATA"]) / "mnist" if "BIPROP_DATA" in os.environ else SUBSET
    p.add_argument("--data", type=Path, default=default, help="folder of the four MNIST IDX .gz files")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("mnist_bp_bfa.png"))
    args = p.parse_args()

    x, y, xt, yt = mnist(args.data)
    print(f"{len(x)} training and {len(xt)} test images from {args.data}")
    curves = {}
    for rule in ["bp", "bfa"]:
        t = biprop.Trainer([784, 800, 10], rule=rule, lr=0.05, momentum=0.9, seed=1)
        curves[rule] = []
        for epoch in range(1, args.epochs + 1):
            train = t.fit_epoch(x, y, progress=True)
            test = t.evaluate(xt, yt)
            curves[rule].append(100 * test["error"])
            print(f"{rule} epoch {epoch}: train error {100 * train['error']:.2f}%, test error {100 * test['error']:.2f}%")
        angles = t.alignment(xt[:128], yt[:128])
        print(f"{rule}: angle between its update and BP's gradient {angles['update_0']:.1f} degrees")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for rule, errs in curves.items():
        ax.plot(range(1, len(errs) + 1), errs, marker="o", label=rule.upper())
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test error (%)")
    ax.set_title("MNIST 784-800-10, SGD momentum 0.9")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
