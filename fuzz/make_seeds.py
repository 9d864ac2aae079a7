"""Writes the fuzzer's seeds: one valid IDX file of each kind, raw and gzipped."""

import gzip
import os
import struct

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
images = struct.pack(">IIII", 2051, 1, 28, 28) + bytes((i * 7) % 256 for i in range(784))
labels = struct.pack(">II", 2049, 10) + bytes(range(10))
for name, data in [("images", images), ("labels", labels)]:
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)
    with open(os.path.join(here, name + ".gz"), "wb") as f:
        f.write(gzip.compress(data, mtime=0))
