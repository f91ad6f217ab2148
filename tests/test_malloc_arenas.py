"""A server worker's threads share glibc malloc arenas (``courier.cli.limit_malloc_arenas``,
issue 17, memory): with the limit, six threads that allocate make one arena between them
besides the main thread's; without it, one each."""

from __future__ import annotations

import platform

import pytest

from tests.support import probe

PROBE = """
import json, re, sys, threading
from courier.cli import limit_malloc_arenas
applied = limit_malloc_arenas() if sys.argv[1] == "limited" else None
ready, done = threading.Barrier(7), threading.Event()
def allocate():
    kept = [bytearray(20_000) for _ in range(50)]  # malloc'd in the thread's arena
    ready.wait()
    done.wait()
threads = [threading.Thread(target=allocate) for _ in range(6)]
for thread in threads:
    thread.start()
ready.wait()
# A thread arena's heap: a read-write mapping at a 64 MiB boundary, the rest of its 64 MiB
# reserved (no access) right after it.
maps = []
for line in open("/proc/self/maps"):
    span, perms = line.split()[:2]
    start, end = (int(part, 16) for part in span.split("-"))
    maps.append((start, end, perms, len(line.split()) > 5))
heaps = sum(
    1
    for (start, end, perms, named), (next_start, next_end, next_perms, _) in zip(maps, maps[1:])
    if perms.startswith("rw") and not named and start % (64 << 20) == 0
    and next_start == end and next_perms.startswith("---") and next_end % (64 << 20) == 0
)
done.set()
print(json.dumps([applied, heaps]))
"""


def arenas(mode: str) -> tuple[bool | None, int]:
    applied, heaps = probe(PROBE, mode, timeout=60)
    return applied, heaps


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc"
)
def test_threads_share_one_arena_once_limited() -> None:
    applied, heaps = arenas("limited")
    assert applied is True
    assert heaps <= 1
    _, unlimited = arenas("default")
    assert unlimited >= 4  # the control: one arena per thread (up to 8 per core)
