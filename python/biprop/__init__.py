"""biprop: backpropagation and its biologically plausible alternatives, from Python.

Every rule of the Rust library -- BP, FA, DFA, BFA, BDFA, KP, USF, FRSF, BRSF,
DRTP, DKP -- with its exact mathematics, bitwise reproducibility and speed,
on NumPy arrays.

Two ways in:

* :func:`train` runs a whole experiment as ``biprop train`` does (data,
  epochs, metrics files, checkpoint) and returns a :class:`Run`.
* :class:`Trainer` is a network, its learning rule and its optimizer for
  your own data and loop: ``step``, ``fit_epoch``, ``predict``,
  ``evaluate``, ``alignment``, ``generate``, ``state_dict``, ``save``. It
  takes NumPy arrays, CPU torch tensors and a DataLoader's batches as they
  are, and its ``state_dict`` goes into ``torch.nn.Linear`` layers.

The package also installs the ``biprop`` command (``python -m biprop``
too): the Rust binary's command line, the same code.

Settings are the keys of ``biprop train`` (``biprop train --help``, or
:func:`default_config` for every key and its default), given as keyword
arguments, a dict or a TOML file. A setting that does not exist, has a bad
value, or would have no effect on the run raises ``ValueError`` with the
CLI's message; file errors raise ``OSError``; a run whose loss stops being
finite raises :class:`DivergedError`. Ctrl-C stops training between two
batches and raises ``KeyboardInterrupt``.

The work runs with the GIL released, on the number of threads the
``threads`` setting asks for (0, the default, means every core); the
results are bitwise the same for every thread count on one machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from . import _native
from ._native import DivergedError

__all__ = [
    "DivergedError",
    "Run",
    "Trainer",
    "default_config",
    "load",
    "rules",
    "train",
]

__version__ = "0.1.0"

Settings = Union[None, str, "os.PathLike[str]", Mapping[str, Any]]

#: What the trainer's methods take as inputs: NumPy arrays, CPU torch tensors,
#: anything with ``__array__``, the buffer protocol or DLPack.
ArrayLike = Any


def rules() -> List[str]:
    """The names of every learning rule, e.g. ``["bp", "fa", ...]``."""
    return list(_native.rules())


def default_config() -> str:
    """Every setting with its default value, as TOML text."""
    return _native.default_config()


def _layers(config: Settings) -> list:
    if config is None:
        return []
    if isinstance(config, Mapping):
        return [dict(config)]
    if isinstance(config, (str, os.PathLike)):
        return [os.fspath(config)]
    raise TypeError(
        f"config must be a dict of settings or the path of a TOML file, got {type(config).__name__}"
    )


def _tqdm(progress: bool):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class Run:
    """The outcome of :func:`train`.

    Attributes:
        records: one dict per epoch (``epoch``, ``train_loss``,
            ``train_error``, ``val_loss``, ``val_error``, ``test_loss``,
            ``test_error``, ``train_seconds``, ``seconds``, the rule's
            feedback losses, the alignment angles ``align_*`` in degrees
            with ``align_samples``, the probe rows they are measured on, and
            the weight norms ``norm_*``, e.g. ``norm_forward.0.weight``).
        metrics: the same as columns: name -> NumPy array, one value an epoch.
        weights: every tensor of the trained network and rule, named as in
            checkpoints (``forward.0.weight`` ``[out, in]``, ``feedback.*``).
        dir: the run directory (``config.toml``, ``metrics.csv``,
            ``checkpoint.safetensors``).
        config: the resolved settings, as TOML text.
    """

    def __init__(self, raw: Dict[str, Any]):
        self.records: List[Dict[str, float]] = raw["records"]
        self.weights: Dict[str, np.ndarray] = raw["weights"]
        self.dir = Path(raw["dir"])
        self.config: str = raw["config"]
        names: List[str] = []
        for r in self.records:
            names.extend(k for k in r if k not in names)
        self.metrics: Dict[str, np.ndarray] = {
            k: np.array([r.get(k, np.nan) for r in self.records], dtype=np.float64)
            for k in names
        }
        if "epoch" in self.metrics:
            self.metrics["epoch"] = self.metrics["epoch"].astype(np.int64)

    def to_pandas(self):
        """The metrics as a ``pandas.DataFrame`` indexed by epoch (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.metrics).set_index("epoch")

    def trainer(self) -> "Trainer":
        """The trained network as a :class:`Trainer`, from the run's checkpoint."""
        return load(self.dir / "checkpoint.safetensors")

    def __repr__(self) -> str:
        last = self.records[-1] if self.records else {}
        err = last.get("test_error", float("nan"))
        return f"Run(dir={str(self.dir)!r}, epochs={len(self.records)}, test_error={err:.4f})"


def train(
    config: Settings = None,
    *,
    out: Union[None, str, "os.PathLike[str]"] = None,
    resume: bool = False,
    force: bool = False,
    init_from: Union[None, str, "os.PathLike[str]"] = None,
    init_forward_from: Union[None, str, "os.PathLike[str]"] = None,
    progress: bool = True,
    on_epoch: Optional[Callable[[Dict[str, float]], None]] = None,
    **settings: Any,
) -> Run:
    """Train one network as ``biprop train`` does and return the :class:`Run`.

    Args:
        config: settings as a dict or a TOML file's path; keyword settings
            override it.
        out: the run directory (default: a fresh ``runs/RULE-HIDDEN-seedS``).
        resume: continue the run already in ``out`` from its checkpoint.
        force: overwrite a run already in ``out``.
        init_from: start from this checkpoint's weights (same rule and shapes).
        init_forward_from: start from this checkpoint's forward weights only.
        progress: show a progress bar (``tqdm.auto``: a widget in Jupyter,
            text in a terminal; needs ``tqdm``).
        on_epoch: called with each epoch's record as it finishes.
        **settings: any setting of ``biprop train`` by its key: ``rule="bfa"``,
            ``hidden="2x800"`` or ``[800, 800]``, ``epochs=20``, ``lr=0.0128``,
            ``data_dir=...``, ``seed=1``, ``threads=0`` ...

    Raises:
        ValueError: an unknown setting, a bad value, or one without effect.
        OSError: data or files that cannot be read or written.
        DivergedError: the training loss stopped being finite.
        KeyboardInterrupt: Ctrl-C; the checkpoint keeps the last whole epoch.
    """
    tqdm = _tqdm(progress)
    bar: Dict[str, Any] = {"bar": None}

    # One bar for the whole run, left in place: in a notebook it is the
    # record of the run's length; the epoch and the last test error ride on it.
    def on_progress(epoch: int, done: int, total: int, epochs: int) -> None:
        b = bar["bar"]
        if b is None:
            b = bar["bar"] = tqdm(
                total=epochs * total, initial=(epoch - 1) * total, unit="sample", unit_scale=True
            )
        b.set_description(f"epoch {epoch}/{epochs}", refresh=False)
        # Never backwards: a count read while an epoch turns may lag its number.
        b.update(max(0, (epoch - 1) * total + done - b.n))

    def epoch_done(record: Dict[str, float]) -> None:
        if bar["bar"] is not None:
            bar["bar"].set_postfix(test_error=f"{100 * record['test_error']:.2f}%", refresh=False)
        if on_epoch is not None:
            on_epoch(record)

    try:
        raw = _native.train(
            _layers(config),
            settings,
            out=None if out is None else os.fspath(out),
            resume=resume,
            force=force,
            init_from=None if init_from is None else os.fspath(init_from),
            init_forward_from=None if init_forward_from is None else os.fspath(init_forward_from),
            on_progress=on_progress if tqdm is not None else None,
            on_epoch=epoch_done if tqdm is not None else on_epoch,
        )
    finally:
        if bar["bar"] is not None:
            bar["bar"].close()
    return Run(raw)


def _array(x: Any) -> np.ndarray:
    """``x`` as a NumPy array over its own memory where it can be: arrays as
    they are; objects with ``__array__``, the array interface or the buffer
    protocol (CPU torch tensors, memoryviews, pandas) through ``np.asarray``;
    objects with only DLPack through ``np.from_dlpack``."""
    if isinstance(x, np.ndarray):
        return x
    if (
        hasattr(x, "__dlpack__")
        and not hasattr(x, "__array__")
        and not hasattr(x, "__array_interface__")
    ):
        return np.from_dlpack(x)
    return np.asarray(x)


def _inputs(x: Any, shape: Tuple[int, int, int]) -> np.ndarray:
    """Inputs as float32 ``[rows, c*h*w]`` without a copy. A network of
    images (``shape`` = (c, h, w), channels first as PyTorch has them) takes
    ``[N, c, h, w]``, ``[N, h, w]`` when it has one channel, or rows already
    flat in that order; any other shape is refused, so that channels-last
    images ``[N, h, w, c]`` are never read as channels-first. An MLP
    (``(inputs, 1, 1)``) takes rows, or samples of any shape with that many
    values (images ``[N, 1, 28, 28]``), flattened after the first dimension."""
    c, h, w = shape
    width = c * h * w
    a = _array(x)
    if a.dtype != np.float32:
        raise TypeError(
            f"x must hold float32 values, got {a.ndim}-D {a.dtype} from {type(x).__name__} "
            "(convert with np.asarray(x, dtype=np.float32), or x.float() for a torch tensor)"
        )
    image = h > 1 or w > 1
    if image and a.ndim > 2:
        takes = [(c, h, w)] + ([(h, w)] if c == 1 else [])
        if tuple(a.shape[1:]) not in takes:
            hint = ""
            if a.ndim == 4 and tuple(a.shape[1:]) == (h, w, c):
                hint = " These look channels-last: use x.transpose(0, 3, 1, 2), then np.ascontiguousarray."
            raise ValueError(
                f"x has shape {tuple(a.shape)}; the network takes images [N, {c}, {h}, {w}] "
                f"(channels first){' or [N, %d, %d]' % (h, w) if c == 1 else ''}, "
                f"or rows of {width} values in that order.{hint}"
            )
    if a.ndim > 2:
        per_row = int(np.prod(a.shape[1:]))
        if per_row != width:
            raise ValueError(
                f"x has shape {tuple(a.shape)}: {per_row} values per row, the network takes {width} inputs"
            )
        if not a.flags.c_contiguous:
            raise ValueError(
                "x must be C-contiguous (row-major); use np.ascontiguousarray(x), or x.contiguous() for a torch tensor"
            )
        a = a.reshape(a.shape[0], per_row)
    elif a.ndim != 2:
        takes = f"[N, {c}, {h}, {w}] or " if image else ""
        raise ValueError(
            f"x must be {takes}[rows, {width}] (or [rows, ...] with {width} values a row), got shape {tuple(a.shape)}"
        )
    return a


def _labels(y: Any) -> np.ndarray:
    """Integer labels as int64 (a copy only for other integer types), or
    float32 one-hot targets as they are."""
    y = _array(y)
    if y.dtype.kind in "iu":
        return y.astype(np.int64, copy=False)
    return y


class Trainer:
    """A network, its learning rule and its optimizer, for your own data and loop.

    Args:
        sizes: an MLP's widths, input to output, e.g. ``[784, 800, 10]``;
            or leave it out and name the network with a preset,
            ``net="biotorch-lenet-cifar"`` (the presets: docs/networks.md),
            or ``layers="conv 6 5x5, relu, maxpool 2, flatten, dense 10"``.
        rule: the learning rule (:func:`rules` lists them).
        image: the input's ``(channels, height, width)`` for ``layers``
            (a ``net`` preset knows its data set's: MNIST's ``(1, 28, 28)``,
            CIFAR-10's ``(3, 32, 32)``).
        classes: the outputs of a ``net`` or ``layers`` network (10).
        config: more settings as a dict or a TOML file's path.
        **settings: any training setting by its key (``lr``, ``momentum``,
            ``optimizer``, ``batch_size``, ``seed``, ``threads``,
            ``activation``, ``output``, ``feedback_lr`` ...). ``batch_size``
            is the largest batch :meth:`step` takes.

    Inputs ``x`` are float32, ``[rows, sizes[0]]`` or ``[rows, ...]`` with
    ``sizes[0]`` values a row (a batch of images ``[N, C, H, W]``, NCHW as in
    PyTorch, is flattened to ``[N, C*H*W]``), C-contiguous. They may be NumPy arrays or
    anything with ``__array__``, the buffer protocol or DLPack: CPU torch
    tensors (without ``requires_grad``; ``.detach()`` them), a DataLoader's
    batches as they come. Their memory is read where it lies, never copied.
    Targets ``y`` are integer class labels ``[rows]`` (any integer type, a
    torch int64 tensor) or float32 one-hot rows ``[rows, sizes[-1]]``. A
    wrong dtype raises ``TypeError``; a wrong shape or memory layout raises
    ``ValueError``, and so does NaN or infinity in ``x`` or ``y`` (naming
    the first bad row). A batch whose outputs are not finite (the weights
    have diverged) updates nothing and raises :class:`DivergedError`; so
    does evaluating such a network, which never reports an error rate
    computed from NaN.

    A network that cannot fit in the memory this machine has left raises
    ``MemoryError`` naming its largest parts, before anything is allocated;
    sizes that are not positive integers, or more ``threads`` than the
    machine can use (4 x its cores, at most 1024), raise ``ValueError``.
    """

    def __init__(
        self,
        sizes: Optional[List[int]] = None,
        rule: str = "bp",
        config: Settings = None,
        *,
        image: Optional[Tuple[int, int, int]] = None,
        classes: Optional[int] = None,
        **settings: Any,
    ):
        settings = dict(settings, rule=rule)
        sizes = None if sizes is None else list(sizes)
        for s in sizes or []:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 1 <= s < 2**64:
                raise ValueError(
                    f"sizes must be positive integers, e.g. [784, 800, 10]; got {sizes!r}"
                )
        sizes = None if sizes is None else [int(s) for s in sizes]
        self._t = _native.Trainer(sizes, _layers(config), settings, image, classes)

    @classmethod
    def _wrap(cls, native: Any) -> "Trainer":
        self = cls.__new__(cls)
        self._t = native
        return self

    def _x(self, x: Any) -> np.ndarray:
        return _inputs(x, self._t.input_shape())

    @property
    def sizes(self) -> List[int]:
        """Every layer's width, input to output."""
        return self._t.sizes()

    @property
    def config(self) -> str:
        """The resolved settings, as TOML text."""
        return self._t.config()

    @property
    def steps(self) -> int:
        """Optimizer steps taken."""
        return self._t.steps()

    @property
    def epochs(self) -> int:
        """Epochs trained by :meth:`fit_epoch` (or stored in a loaded checkpoint)."""
        return self._t.epochs()

    @property
    def input_statistics(self) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """``(mean, std)``, float32 ``[channels]`` each, with which every input
        is standardized (``normalize="channel"``: a run measures them on its
        training split, and its checkpoint keeps them), else None. Give such
        a trainer raw inputs; it standardizes them itself."""
        return self._t.input_statistics()

    def step(self, x: ArrayLike, y: Any) -> Dict[str, float]:
        """One training step on a batch: forward, the rule's errors, the updates.

        The batch is trained on as given: the ``augment`` setting applies to
        :meth:`fit_epoch` (and to runs), which know each row's index.
        Returns the batch's mean ``loss``, its ``error`` rate and ``samples``.
        """
        return self._t.step(self._x(x), _labels(y))

    def fit_epoch(
        self,
        x: ArrayLike,
        y: Any,
        batch_size: Optional[int] = None,
        shuffle: bool = True,
        progress: bool = False,
    ) -> Dict[str, float]:
        """One pass over ``x`` in batches (default: the ``batch_size`` setting).

        With ``shuffle``, epoch ``e`` visits the rows in the order a run of the
        same ``seed`` uses in its epoch ``e``, so a trainer fed the training
        split of a run reproduces it. With the ``augment`` setting, row ``i``
        is flipped and shifted as a run's training sample ``i`` is in the same
        epoch. Returns the epoch's mean ``loss`` and ``error`` over its
        batches. Ctrl-C stops between two batches.
        """
        x = self._x(x)
        tqdm = _tqdm(progress)
        if tqdm is None:
            return self._t.fit_epoch(x, _labels(y), batch_size, shuffle)
        with tqdm(total=len(x), desc=f"epoch {self.epochs + 1}", unit="sample", leave=False) as bar:
            return self._t.fit_epoch(
                x, _labels(y), batch_size, shuffle, lambda done, total: bar.update(done - bar.n)
            )

    def predict_proba(self, x: ArrayLike) -> np.ndarray:
        """The network's outputs ``[rows, classes]`` (sigmoid or softmax probabilities)."""
        return self._t.predict_proba(self._x(x))

    def predict(self, x: ArrayLike) -> np.ndarray:
        """The predicted class of every row, as int64."""
        return np.argmax(self._t.predict_proba(self._x(x)), axis=1).astype(np.int64)

    def evaluate(self, x: ArrayLike, y: Any) -> Dict[str, float]:
        """Mean ``loss`` and ``error`` rate on ``x`` and ``y``, without training."""
        return self._t.evaluate(self._x(x), _labels(y))

    def alignment(self, x: ArrayLike, y: Any) -> Dict[str, float]:
        """Angles in degrees with backpropagation on one batch, nothing updated.

        ``update_{i}``: between the rule's update of ``forward.{i}.weight`` and
        BP's gradient; ``delta_{i}``: between the hidden errors; ``feedback_{i}``:
        between the matrix that carries the error and the forward weights
        transposed (NaN for rules without one); ``samples``: how many rows
        have an output error that is not exactly zero, the rows every angle
        is measured on (at 0, every angle is NaN: a softmax saturated to
        one-hot on every row).
        """
        return self._t.alignment(self._x(x), _labels(y))

    def generate(self, labels: Any) -> np.ndarray:
        """What the feedback network of a BFA trainer generates from labels:
        the paper's Figure 6 (``biprop generate`` renders the same as a PNG).

        Args:
            labels: class labels ``[rows]`` (each becomes its one-hot vector),
                or float32 label vectors ``[rows, sizes[-1]]``, any mixture
                (``0.5`` of a 3 and ``0.5`` of an 8).

        Returns:
            float32 ``[rows, sizes[0]]``, one generated input a row (as raw
            pixels, for a standardized trainer too); reshape MNIST's to
            ``(-1, 28, 28)`` to show them.

        Raises:
            ValueError: the rule has no feedback network (only BFA has one),
                or the labels do not fit it.
        """
        classes = self.sizes[-1]
        y = _labels(labels)
        if y.dtype == np.int64 and y.ndim == 1:
            if np.any((y < 0) | (y >= classes)):
                raise ValueError(f"labels must be in 0..{classes}")
            y = np.eye(classes, dtype=np.float32)[y]
        if y.dtype != np.float32 or y.ndim != 2 or y.shape[1] != classes:
            raise ValueError(
                f"labels must be class labels [rows] or float32 label vectors [rows, {classes}], "
                f"got {y.ndim}-D {y.dtype} of shape {tuple(y.shape)}"
            )
        return self._t.generate(np.ascontiguousarray(y))

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Every weight as a NumPy array (a copy), named as in checkpoints:
        ``forward.{i}.weight`` ``[out, in]`` and ``forward.{i}.bias``
        ``[out]``, as ``torch.nn.Linear`` holds them, then the rule's
        ``feedback.*``. ``torch.from_numpy`` takes them; the README's Python
        section loads them into an ``nn.Sequential``."""
        return self._t.state_dict()

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Loads weights of :meth:`state_dict`'s names and shapes; every tensor
        must be present and used (``ValueError`` names the first that is not)."""
        self._t.load_state_dict(
            {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}
        )

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes a checkpoint (safetensors: weights, optimizer state, settings)."""
        self._t.save(os.fspath(path))

    def __repr__(self) -> str:
        rule = next(
            (l.split("=", 1)[1].strip().strip('"') for l in self.config.splitlines() if l.startswith("rule")),
            "?",
        )
        return f"Trainer(sizes={self.sizes}, rule={rule!r}, steps={self.steps})"


def load(path: Union[str, "os.PathLike[str]"]) -> Trainer:
    """A :class:`Trainer` from a checkpoint of :meth:`Trainer.save` or of a run,
    with its settings, weights and (when stored) optimizer state."""
    return Trainer._wrap(_native.load(os.fspath(path)))
