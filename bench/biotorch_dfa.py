"""biotorch's own DFA layers on its CIFAR-10 LeNet, with its SGD DFA
configuration, for a few epochs: what its code does today beside biprop's
`dfa_projection = "kernel"` (docs/results/conv.md, "biotorch's DFA").

biotorch's layers are imported from a checkout of jsalbert/biotorch given
by --biotorch (nothing of it is copied here); the network is its
`le_net_cifar` (conv 32, 64, 128 3x3, max-pooling, a 4x4 average pool,
dense 256 and 10, ReLU), built from its `layers/dfa` Conv2d and Linear, and
each batch hands the loss gradient to every layer as its `BioModule` does.
The protocol is its `benchmark_configs/cifar10/le_net/sgd/dfa.yaml`: SGD
with momentum 0.9, weight decay 1e-4, rate 1e-4, batch 128, 45k/5k
train/validation, random flips and crops of a copy padded by 4, every
channel standardized by the training images' statistics.

    git clone https://github.com/jsalbert/biotorch /tmp/biotorch
    git -C /tmp/biotorch checkout 2c85c71   # the commit that wrote its tables
    pip install torch numpy
    python bench/biotorch_dfa.py --biotorch /tmp/biotorch \
        --data "$BIPROP_DATA" --epochs 4

--data is a folder holding `cifar-10-batches-bin/` (as `biprop` downloads
it), by default $BIPROP_DATA. Prints, per epoch, the mean training loss,
the training and validation error and the Frobenius norm of each forward
weight.
"""

import argparse
import os
import sys
import time

import numpy as np


def load(folder, files):
    raw = np.concatenate(
        [np.fromfile(os.path.join(folder, f), dtype=np.uint8).reshape(-1, 3073) for f in files]
    )
    images = raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255
    return images, raw[:, 0].astype(np.int64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--biotorch", required=True, help="a checkout of jsalbert/biotorch")
    ap.add_argument("--data", default=os.environ.get("BIPROP_DATA"),
                    help="folder with cifar-10-batches-bin/ (default $BIPROP_DATA)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=2021, help="biotorch's config seed")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if not args.data:
        ap.error("give --data or set BIPROP_DATA")
    folder = os.path.join(args.data, "cifar-10-batches-bin")
    if not os.path.isdir(folder):
        ap.error(f"{folder} is not a folder")

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    sys.path.insert(0, args.biotorch)
    from biotorch.layers.dfa.conv import Conv2d
    from biotorch.layers.dfa.linear import Linear

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.RandomState(args.seed)

    x, y = load(folder, [f"data_batch_{i}.bin" for i in range(1, 6)])
    perm = rng.permutation(len(x))
    train, val = perm[:45000], perm[45000:]
    mean = x[train].mean(axis=(0, 2, 3), keepdims=True)
    std = x[train].std(axis=(0, 2, 3), keepdims=True)
    xtr = torch.tensor((x[train] - mean) / std)
    xva = torch.tensor((x[val] - mean) / std)
    ytr, yva = torch.tensor(y[train]), torch.tensor(y[val])

    def config():
        return {"options": {"constrain_weights": False, "init": "xavier", "gradient_clip": False}}

    class LeNetCifar(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = Conv2d(3, 32, 10, 3, layer_config=config())
            self.conv2 = Conv2d(32, 64, 10, 3, layer_config=config())
            self.conv3 = Conv2d(64, 128, 10, 3, layer_config=config())
            self.fc1 = Linear(128, 256, 10, layer_config=config())
            self.fc2 = Linear(256, 10, 10, layer_config=config())

        def forward(self, x):
            out = F.max_pool2d(F.relu(self.conv1(x)), 2)
            out = F.max_pool2d(F.relu(self.conv2(out)), 2)
            out = F.relu(self.conv3(out))
            out = F.avg_pool2d(out, out.size()[3]).view(out.size(0), -1)
            return self.fc2(F.relu(self.fc1(out)))

    net = LeNetCifar()
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    layers = [net.conv1, net.conv2, net.conv3, net.fc1, net.fc2]
    for epoch in range(1, args.epochs + 1):
        start = time.time()
        net.train()
        order = torch.randperm(len(xtr))
        total = wrong = seen = 0
        # biotorch's training loader drops the last partial batch.
        for i in range(0, len(order) - 127, 128):
            idx = order[i:i + 128]
            xb, yb = xtr[idx], ytr[idx]
            flip = torch.rand(len(idx)) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            padded = F.pad(xb, (4, 4, 4, 4))
            dy, dx = rng.randint(0, 9, len(idx)), rng.randint(0, 9, len(idx))
            xb = torch.stack([padded[k, :, a:a + 32, b:b + 32] for k, (a, b) in enumerate(zip(dy, dx))])
            out = net(xb)
            # BioModule's DFA: the loss gradient at the output, to every layer.
            grad = torch.autograd.grad(loss_fn(out, yb), out, retain_graph=True)[0]
            for m in net.modules():
                m.loss_gradient = grad
            loss = loss_fn(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            wrong += (out.argmax(1) != yb).sum().item()
            seen += len(idx)
        net.eval()
        with torch.no_grad():
            val_err = (net(xva).argmax(1) != yva).float().mean().item()
        norms = ", ".join(f"{m.weight.norm().item():.4g}" for m in layers)
        print(f"epoch {epoch}: train loss {total / seen:.4g}, train error {wrong / seen:.4f}, "
              f"validation error {val_err:.4f}, weight norms {norms} ({time.time() - start:.0f} s)",
              flush=True)


if __name__ == "__main__":
    main()
