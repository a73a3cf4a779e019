"""models/heap.py: the heap's freed pages go back to the OS."""

from __future__ import annotations

import pytest
import torch

from pipeline_cocosnet.models import heap


def resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(heap._libc() is None, reason="glibc only")
def test_freed_heap_pages_go_back_to_the_os():
    # 1 MiB tensors come from the heap; the last one kept alive pins the heap's top, so glibc's own
    # trimming cannot return the 63 freed below it
    tensors = [torch.ones(2**18) for _ in range(64)]
    last = tensors.pop()
    del tensors
    before = resident_mib()
    heap.return_freed_memory()
    assert before - resident_mib() > 32
    del last


def test_without_glibc_it_is_a_no_op(monkeypatch):
    monkeypatch.setattr(heap, "_libc", lambda: None)
    heap.return_freed_memory()
