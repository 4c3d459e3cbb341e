"""PyTorch's side of experiments/conv-cifar-first-epochs.toml: biotorch's
CIFAR-10 LeNet benchmark (le_net_cifar, Xavier weights and zero biases,
softmax cross-entropy, SGD with momentum 0.9 and weight decay 1e-4, batch
128, 45k training images flipped and cropped from a 4-pixel black border,
then standardized per channel) trained with backpropagation for its first
epochs, one run a seed, to see how often a rate leaves the network at
chance, as it does biprop's.

Usage (torch only; no torchvision):

    BIPROP_DATA=DIR python experiments/torch_lenet_cifar.py [--lr 0.1] [--seeds 1,2,3] [--epochs 3]

DIR holds CIFAR-10's binary version (cifar-10-batches-bin/, as biprop
downloads it). One line an epoch, then one line a seed: "at chance" when
its training error is still at least 85% after the last epoch.
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
from torch import nn


def load(folder):
    """The 50k training images as uint8 NCHW and their labels."""
    for sub in ("cifar-10-batches-bin", "."):
        path = os.path.join(folder, sub, "data_batch_1.bin")
        if os.path.exists(path):
            base = os.path.dirname(path)
            break
    else:
        sys.exit(f"no CIFAR-10 binary batches (data_batch_1.bin) under {folder}")
    raw = np.concatenate(
        [np.fromfile(os.path.join(base, f"data_batch_{i}.bin"), dtype=np.uint8).reshape(-1, 3073) for i in range(1, 6)]
    )
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


def lenet_cifar():
    net = nn.Sequential(
        nn.Conv2d(3, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(128, 84), nn.Linear(84, 10),
    )
    for layer in net:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return net


def augment(images, rng):
    """Flip half, then crop 32x32 from a 4-pixel black border, per image."""
    n = len(images)
    flipped = np.where(rng.random(n)[:, None, None, None] < 0.5, images[..., ::-1], images)
    padded = np.zeros((n, 3, 40, 40), dtype=np.uint8)
    padded[:, :, 4:36, 4:36] = flipped
    dy, dx = rng.integers(0, 9, n), rng.integers(0, 9, n)
    return np.stack([padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32] for i in range(n)])


def positive(text):
    """An integer of at least 1, or argparse's error naming the flag."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not at least 1")
    return value


def seed_list(text):
    """Comma-separated integer seeds."""
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("BIPROP_DATA"), help="CIFAR-10 folder (default $BIPROP_DATA)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seeds", type=seed_list, default=[1, 2, 3])
    p.add_argument("--epochs", type=positive, default=3)
    p.add_argument("--threads", type=positive, default=1)
    a = p.parse_args()
    if not a.data:
        sys.exit("give the CIFAR-10 folder with --data or BIPROP_DATA")
    torch.set_num_threads(a.threads)
    images, labels = load(a.data)
    split = np.random.default_rng(0).permutation(len(images))
    train = split[5000:]
    x = images[train].astype(np.float32) / 255
    mean = x.mean(axis=(0, 2, 3)).reshape(1, 3, 1, 1)
    std = x.std(axis=(0, 2, 3)).reshape(1, 3, 1, 1)
    y = torch.from_numpy(labels[train])
    for seed in a.seeds:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        net = lenet_cifar()
        opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9, weight_decay=1e-4)
        for epoch in range(1, a.epochs + 1):
            start, loss_sum, wrong = time.time(), 0.0, 0
            order = rng.permutation(len(train))
            for k in range(0, len(order), 128):
                batch = order[k:k + 128]
                xb = (augment(images[train[batch]], rng).astype(np.float32) / 255 - mean) / std
                out = net(torch.from_numpy(xb))
                loss = nn.functional.cross_entropy(out, y[batch])
                opt.zero_grad()
                loss.backward()
                opt.step()
                loss_sum += loss.item() * len(batch)
                wrong += (out.argmax(1) != y[batch]).sum().item()
            error = wrong / len(order)
            print(f"seed {seed} epoch {epoch}: training loss {loss_sum / len(order):.4f}, "
                  f"error {100 * error:.2f}% ({time.time() - start:.0f} s)", flush=True)
        print(f"seed {seed}: {'at chance' if error >= 0.85 else 'learning'} after {a.epochs} epochs at lr {a.lr}",
              flush=True)


if __name__ == "__main__":
    main()
