#!/usr/bin/env bash
# Trains the same MLP in PyTorch, JAX and biprop and prints their epoch times
# side by side (see the docstring of bench/peers.py). Makes, once, a venv at
# bench/.venv with torch, jax[cpu] and numpy from PyPI, then runs peers.py in
# it with all arguments passed through.
#   BIPROP_DATA=/path/to/data bench/peers.sh [--epochs 3] [--hidden 800,800]
#     [--threads 2] [--frameworks torch,jax,biprop] [--repeats 1]
#
# torch: PyPI has no CPU-only Linux x86_64 wheel (the +cpu builds live only on
# the PyTorch index). `pip install torch --no-deps` plus its pure-Python deps
# installs but does not import: libtorch_cpu.so, libtorch_cuda.so and
# libtorch_python.so are linked against libcudart, libcublas, libcudnn, nccl
# ... ("OSError: libcudart.so.13" then "ValueError: libcublasLt.so.*[0-9] not
# found" for torch 2.15.0). So this is the full install: ~3 GB of nvidia-*
# / cuda-* wheels, ~5.4 GB of venv. CUDA is never used; torch runs on the CPU.
# Override the pins with TORCH_SPEC / JAX_SPEC, the interpreter with PYTHON.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$here/.venv
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.15.0}
jax_spec=${JAX_SPEC:-jax[cpu]==0.10.2}

if [ ! -f "$venv/.peers-installed" ]; then
  echo "peers.sh: installing $torch_spec, $jax_spec and numpy into $venv (once, ~3 GB download)" >&2
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --no-cache-dir --upgrade pip
  "$venv/bin/pip" install -q --no-cache-dir "$torch_spec" "$jax_spec" numpy
  "$venv/bin/python" -c 'import torch, jax, numpy; torch.ones(2) @ torch.ones(2); jax.numpy.ones(2).sum()'
  touch "$venv/.peers-installed"
fi

# peers.py runs from the repository root: a relative data folder must still
# mean the one the caller named.
if [ -n "${BIPROP_DATA:-}" ] && [ -d "$BIPROP_DATA" ]; then
  BIPROP_DATA=$(cd "$BIPROP_DATA" && pwd); export BIPROP_DATA
fi
cd "$here/.."
exec "$venv/bin/python" "$here/peers.py" "$@"
