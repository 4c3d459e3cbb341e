#!/usr/bin/env python3
"""Makes tests/data/mnist-subset/ from the original MNIST files.

    python3 tests/data/make_mnist_subset.py DIR   # DIR holds the four MNIST files (.gz or raw)

Keeps the first 6,000 training images (5,000 to train and 1,000 to validate in
the tests) and the first 1,000 test images, in their original order, as IDX
files with the header counts rewritten, gzip-compressed with no timestamp so
that the output is the same bytes on every machine. Prints the sha256 of each
decompressed file; tests/data/README.md records them.
"""
import gzip
import hashlib
import pathlib
import struct
import sys

KEEP = {"train": 6000, "t10k": 1000}


def read(path: pathlib.Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def find(src: pathlib.Path, name: str) -> pathlib.Path:
    for candidate in (src / name, src / (name + ".gz")):
        if candidate.is_file():
            return candidate
    sys.exit(f"{src}: no {name} or {name}.gz")


def subset(data: bytes, n: int) -> bytes:
    magic, count = struct.unpack(">II", data[:8])
    dims = magic & 0xFF
    if magic >> 8 != 0x08 or dims not in (1, 3):
        sys.exit(f"not an MNIST IDX file (magic {magic:#x})")
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    if count < n:
        sys.exit(f"only {count} items, {n} wanted")
    item = 1
    for d in shape[1:]:
        item *= d
    header = struct.pack(">II", magic, n) + data[8 : 4 + 4 * dims]
    body = data[4 + 4 * dims : 4 + 4 * dims + n * item]
    return header + body


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    src = pathlib.Path(sys.argv[1])
    out = pathlib.Path(__file__).resolve().parent / "mnist-subset"
    out.mkdir(exist_ok=True)
    for split, n in KEEP.items():
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{split}-{kind}-ubyte"
            data = subset(read(find(src, name)), n)
            with open(out / (name + ".gz"), "wb") as f:
                with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as g:
                    g.write(data)
            print(f"{hashlib.sha256(data).hexdigest()}  {name}")


if __name__ == "__main__":
    main()
