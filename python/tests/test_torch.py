"""biprop beside PyTorch: a DataLoader's batches go into a Trainer as they
come, without a copy, biprop's weights go into the equivalent torch.nn
module, and a training step is torch's. Skipped where torch is not
installed (CI: torch from PyPI brings the CUDA libraries, some 3 GB)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

import biprop

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch)")

SUBSET = Path(__file__).resolve().parents[2] / "tests" / "data" / "mnist-subset"


def idx(name: str) -> np.ndarray:
    raw = gzip.open(SUBSET / name).read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


@pytest.fixture(scope="module")
def loaders():
    """MNIST as torchvision gives it: float32 images [N, 1, 28, 28] in [0, 1],
    int64 labels; the first 2,000 training images and the 1,000 test images."""
    from torch.utils.data import DataLoader, TensorDataset

    def split(images, labels, n):
        x = torch.from_numpy(idx(images)[:n].astype(np.float32) / 255.0).unsqueeze(1)
        y = torch.from_numpy(idx(labels)[:n].astype(np.int64))
        return TensorDataset(x, y)

    train = split("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 2000)
    test = split("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 1000)
    return DataLoader(train, batch_size=100, shuffle=False), DataLoader(test, batch_size=500)


def test_a_dataloaders_batches_train_as_numpy_arrays_do(loaders):
    train, test = loaders
    xb, yb = next(iter(train))
    assert xb.shape == (100, 1, 28, 28) and xb.dtype == torch.float32 and yb.dtype == torch.int64
    # Read where the tensor lies: the array biprop works on is its memory.
    seen = biprop._inputs(xb, (784, 1, 1))
    assert seen.shape == (100, 784)
    assert seen.__array_interface__["data"][0] == xb.data_ptr()
    assert biprop._labels(yb).__array_interface__["data"][0] == yb.data_ptr()

    from_torch = biprop.Trainer([784, 64, 10], rule="bfa", lr=0.05, momentum=0.9, batch_size=100, seed=1)
    from_numpy = biprop.Trainer([784, 64, 10], rule="bfa", lr=0.05, momentum=0.9, batch_size=100, seed=1)
    for epoch in range(2):
        for xb, yb in train:
            from_torch.step(xb, yb)
            from_numpy.step(xb.numpy().reshape(len(xb), 784).copy(), yb.numpy().copy())
    for name, w in from_numpy.state_dict().items():
        assert np.array_equal(from_torch.state_dict()[name], w), name
    errors = [from_torch.evaluate(xb, yb)["error"] for xb, yb in test]
    assert np.mean(errors) < 0.3, errors
    xt, yt = next(iter(test))
    assert np.array_equal(from_torch.predict(xt), from_numpy.predict(xt.numpy().reshape(-1, 784)))
    assert from_torch.alignment(xt[:100], yt[:100])["update_0"] > 0.0
    # Tensors that torch will not hand out without a copy say so.
    with pytest.raises(RuntimeError, match="requires grad"):
        from_torch.step(xb.clone().requires_grad_(True), yb)
    with pytest.raises(TypeError, match="x.float()"):
        from_torch.step(xb.double(), yb)
    with pytest.raises(ValueError, match="contiguous"):
        from_torch.step(xb.permute(0, 1, 3, 2), yb)


def test_weights_load_into_the_equivalent_torch_module(loaders, tmp_path):
    _, test = loaders
    t = biprop.Trainer([784, 64, 32, 10], rule="dfa", lr=0.05, seed=2, batch_size=100)
    for xb, yb in loaders[0]:
        t.step(xb, yb)
    t.save(tmp_path / "dfa.safetensors")

    state = t.state_dict()
    for name, w in state.items():
        tensor = torch.from_numpy(w)
        assert tensor.dtype == torch.float32 and tensor.shape == w.shape, name
        assert tensor.data_ptr() == w.__array_interface__["data"][0], name

    # The README's recipe: a weight file of biprop into nn.Sequential.
    weights = biprop.load(tmp_path / "dfa.safetensors").state_dict()
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 64), torch.nn.Tanh(),
        torch.nn.Linear(64, 32), torch.nn.Tanh(),
        torch.nn.Linear(32, 10),
    )
    model.load_state_dict({
        f"{2 * int(k.split('.')[1])}.{k.split('.')[2]}": torch.from_numpy(v)
        for k, v in weights.items() if k.startswith("forward.")
    })
    xt, _ = next(iter(test))
    with torch.no_grad():
        proba = torch.sigmoid(model(xt.flatten(1))).numpy()
    assert np.max(np.abs(proba - t.predict_proba(xt))) < 1e-5
    # And back: torch's tensors load into a trainer as they are.
    back = {f"forward.{int(k.split('.')[0]) // 2}.{k.split('.')[1]}": v for k, v in model.state_dict().items()}
    u = biprop.Trainer([784, 64, 32, 10], rule="dfa", seed=9)
    u.load_state_dict({**weights, **back})
    assert np.array_equal(u.predict_proba(xt), t.predict_proba(xt))
    # The file is plain safetensors (a JSON header, then the raw tensors), as
    # safetensors.torch.load_file reads it.
    raw = (tmp_path / "dfa.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    for name, w in weights.items():
        meta = header[name]
        start, end = meta["data_offsets"]
        assert meta["dtype"] == "F32" and meta["shape"] == list(w.shape), name
        assert np.array_equal(np.frombuffer(raw[8 + n + start : 8 + n + end], "<f4").reshape(w.shape), w)


def lenet(channels, widths, pad):
    """biotorch's LeNet as torch.nn layers: `widths` of its three 5x5
    convolutions, the first padded by `pad`, then dense 84 and dense 10."""
    nn = torch.nn
    c1, c2, c3 = widths
    return nn.Sequential(
        nn.Conv2d(channels, c1, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c2, c3, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(c3, 84), nn.Linear(84, 10),
    )


def lenet_state(state):
    """biprop's `forward.{i}.*` tensors under the names of `lenet`'s
    layers (its i-th parametric layer is module 0, 3, 6, 9 or 10)."""
    index = {0: 0, 1: 3, 2: 6, 3: 9, 4: 10}
    return {f"{index[int(k.split('.')[1])]}.{k.split('.')[2]}": torch.from_numpy(v.copy())
            for k, v in state.items() if k.startswith("forward.")}


def test_a_convolutional_network_is_torch_s_module_weight_for_weight(loaders):
    """lenet-mnist trained by biprop, its weights in torch.nn's LeNet (Conv2d
    [out, in, kh, kw], NCHW inputs, flatten in C, H, W order): the same
    outputs."""
    train, test = loaders
    t = biprop.Trainer(net="lenet-mnist", rule="usf", output="softmax-ce",
                       optimizer="adam", lr=1e-3, seed=3, batch_size=100)
    for k, (xb, yb) in enumerate(train):
        t.step(xb, yb)
        if k == 4:
            break
    model = lenet(1, (6, 16, 120), pad=2)
    model.load_state_dict(lenet_state(t.state_dict()))
    xt, _ = next(iter(test))
    with torch.no_grad():
        proba = torch.softmax(model(xt), dim=1).numpy()
    assert np.max(np.abs(proba - t.predict_proba(xt))) < 1e-5


def test_a_dfa_projection_to_a_feature_map_is_in_torch_s_flatten_order():
    """A DFA step on conv -> relu -> flatten -> dense, redone in torch from
    the state dict: the rows of ``feedback.0.weight`` are the feature map's
    units in torch's flatten order, so ``e @ D.T`` viewed as ``[N, C, H, W]``
    is the error at the map, and its weight gradient is the update biprop
    made to the convolution (and read channels last, it is not)."""
    rows, lr = 8, 0.1
    t = biprop.Trainer(layers="conv 3 3x3, relu, flatten, dense 4", image=(2, 6, 6),
                       classes=4, rule="dfa", output="softmax-ce", optimizer="sgd",
                       lr=lr, seed=5, batch_size=rows)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 2, 6, 6)).astype(np.float32)
    y = rng.integers(0, 4, rows)
    before = t.state_dict()
    t.step(x, y)
    after = t.state_dict()["forward.0.weight"]
    d = torch.from_numpy(before["feedback.0.weight"])
    assert d.shape == (3 * 4 * 4, 4)

    def torch_update(to_map):
        nn = torch.nn
        conv, dense = nn.Conv2d(2, 3, 3), nn.Linear(3 * 4 * 4, 4)
        with torch.no_grad():
            for layer, i in ((conv, 0), (dense, 1)):
                layer.weight.copy_(torch.from_numpy(before[f"forward.{i}.weight"]))
                layer.bias.copy_(torch.from_numpy(before[f"forward.{i}.bias"]))
        h = torch.relu(conv(torch.from_numpy(x)))
        with torch.no_grad():
            out = dense(h.flatten(1))
            onehot = nn.functional.one_hot(torch.from_numpy(y), 4)
            e = (torch.softmax(out, dim=1) - onehot) / rows
        h.backward(to_map(e @ d.T))
        return before["forward.0.weight"] - lr * conv.weight.grad.numpy()

    want = torch_update(lambda v: v.view(rows, 3, 4, 4))
    assert np.abs(want - before["forward.0.weight"]).max() > 1e-4, "the step moved nothing"
    assert np.allclose(after, want, atol=1e-6), np.abs(after - want).max()
    channels_last = torch_update(lambda v: v.view(rows, 4, 4, 3).permute(0, 3, 1, 2))
    assert not np.allclose(after, channels_last, atol=1e-6)


def test_a_lenet_cifar_bp_step_is_torch_s_sgd_step():
    """biotorch's CIFAR-10 benchmark step, BP on lenet-cifar with SGD,
    momentum and weight decay (on biases too, as torch's SGD has it), from
    the same weights on the same batches: every weight after three steps is
    torch's, to float32 roundoff. So whether a run at some rate trains or
    dies is the protocol's doing, not biprop's (docs/results/conv.md)."""
    t = biprop.Trainer(net="lenet-cifar", rule="bp", output="softmax-ce", optimizer="sgd",
                       lr=0.05, momentum=0.9, weight_decay=1e-4, init="xavier", seed=1,
                       batch_size=32)
    nn = torch.nn
    model = lenet(3, (32, 64, 128), pad=0)
    model.load_state_dict(lenet_state(t.state_dict()))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal((32, 3, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, 32)
        t.step(x, y)
        loss = nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    ours = lenet_state(t.state_dict())
    for name, w in model.state_dict().items():
        assert torch.max(torch.abs(ours[name] - w)) <= 1e-5 * torch.max(torch.abs(w)), name


def test_biotorch_s_dfa_steps_are_its_definition_in_torch():
    """biotorch's DFA (`dfa_projection="kernel"`) on its CIFAR-10 LeNet,
    three SGD steps from the same weights and kernels on the same batches,
    against its definition written here in torch: each layer above the
    first receives at its input, in place of BP's error, `conv2d_input` of
    the output error repeated at every output position with its kernel
    `feedback.{l}.weight` `[10, c_in, 3, 3]` (a dense layer: `e B`), and
    autograd carries it through the pooling, flatten and ReLU below; the
    output layer's own gradient is BP's. Every weight after the steps is
    torch's, to float32 roundoff. torch runs in float64: its float32 step
    sums the first layer's bias over 28,800 positions with a relative error
    of 1.2e-5 of the largest bias (an AMD Zen 5), where biprop, which sums
    biases in float64, is 1.2e-7 from torch's float64 step."""
    F = torch.nn.functional
    t = biprop.Trainer(net="biotorch-lenet-cifar", rule="dfa", dfa_projection="kernel",
                       output="softmax-ce", optimizer="sgd", lr=1e-3, momentum=0.9,
                       weight_decay=1e-4, init="xavier", seed=1, batch_size=32)
    state = t.state_dict()
    w = {k: torch.from_numpy(v.copy()).double().requires_grad_(k.startswith("forward."))
         for k, v in state.items()}
    assert tuple(w["feedback.1.weight"].shape) == (10, 32, 3, 3)
    assert tuple(w["feedback.3.weight"].shape) == (10, 128)
    params = [w[f"forward.{i}.{p}"] for i in range(5) for p in ("weight", "bias")]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=1e-4)

    def layer(i, x):
        if i < 3:
            return F.conv2d(x, w[f"forward.{i}.weight"], w[f"forward.{i}.bias"])
        return F.linear(x, w[f"forward.{i}.weight"], w[f"forward.{i}.bias"])

    # What runs between layer i's product and layer i + 1's.
    between = [
        lambda h: F.max_pool2d(F.relu(h), 2),
        lambda h: F.max_pool2d(F.relu(h), 2),
        lambda h: F.avg_pool2d(F.relu(h), 4).flatten(1),
        F.relu,
    ]
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal((32, 3, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, 32)
        t.step(x, y)
        inputs, outputs = [torch.from_numpy(x).double()], []
        for i in range(4):
            outputs.append(between[i](layer(i, inputs[-1])))
            inputs.append(outputs[-1].detach().requires_grad_())
        logits = layer(4, inputs[-1])
        loss = F.cross_entropy(logits, torch.from_numpy(y))
        opt.zero_grad()
        e = torch.autograd.grad(loss, logits, retain_graph=True)[0]
        loss.backward()
        for i in range(1, 5):
            b = w[f"feedback.{i}.weight"]
            if i < 3:
                h, wd = inputs[i].shape[2] - 2, inputs[i].shape[3] - 2
                repeated = e[:, :, None, None].expand(-1, -1, h, wd)
                signal = torch.nn.grad.conv2d_input(inputs[i].shape, b, repeated)
            else:
                signal = e @ b
            outputs[i - 1].backward(signal)
        opt.step()
    ours = t.state_dict()
    for k in state:
        if k.startswith("forward."):
            want = w[k].detach()
            got = torch.from_numpy(ours[k].copy()).double()
            assert torch.max(torch.abs(got - want)) <= 1e-5 * torch.max(torch.abs(want)), k
        else:
            assert np.array_equal(ours[k], state[k]), f"{k} is fixed"
