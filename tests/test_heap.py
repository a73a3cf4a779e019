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


@pytest.mark.parametrize(("element_size", "trims"), [(4, True), (8, True), (2, False)])
def test_before_the_translator_only_wide_dtypes_return_the_heap(element_size, trims, monkeypatch):
    # float32/float64: the large peak, returned; bf16/fp16: kept for the translator to reuse
    calls = []
    monkeypatch.setattr(heap, "return_freed_memory", lambda: calls.append(1))
    heap.before_translator(element_size)
    assert bool(calls) == trims
