"""Helpers shared by the bench's Python scripts: peak RSS, durable writes, checksums, one JSON line."""
import json
import os
import resource
import sys

import numpy as np


def max_rss() -> int:
    """Peak RSS of this process in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def fsync_paths(*paths: str) -> None:
    """Makes files (or every file under a directory) durable, as modelbridge's atomic writers are."""
    for path in paths:
        files = [path] if os.path.isfile(path) else [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
        for f in files:
            fd = os.open(f, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)


def word_sum(array: np.ndarray) -> int:
    """Sum mod 2^32 of the array's bytes as little-endian 32-bit words: what bench workers compute."""
    words = np.ascontiguousarray(array).reshape(-1).view(np.uint32)
    return int(words.sum(dtype=np.uint64)) % 2**32


def signed32(total: int) -> int:
    """The sum as JavaScript's `| 0` leaves it."""
    total %= 2**32
    return total - 2**32 if total >= 2**31 else total


def report(**values) -> None:
    print(json.dumps(values))
    sys.stdout.flush()
