"""models/heap.py: inside ``reuse_freed_memory`` freed large tensors' pages are reused, not faulted in again."""

from __future__ import annotations

import resource

import pytest
import torch

from pipeline_cocosnet.models import heap

PAGES = 16384  # a 64 MiB tensor: above glibc's largest mmap threshold (32 MiB), so a fresh mapping by default
needs_glibc = pytest.mark.skipif(heap._libc() is None, reason="glibc only")


def faults_per_tensor(cycles: int = 6) -> list[int]:
    """Page faults taken by each of ``cycles`` 64 MiB tensors, each filled and freed before the next."""
    faults = []
    for _ in range(cycles):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        tensor = torch.empty(PAGES * 4096, dtype=torch.uint8)  # (torch: numpy asks for huge pages)
        tensor.fill_(1)
        del tensor
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return faults


def reused(faults: list[int]) -> bool:
    # the first tensors may extend the heap (a freed block exactly the size is too small for an aligned
    # request); from then on freed blocks are reused
    return sum(faults[-3:]) < PAGES // 10


def resident_pages() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1])


@needs_glibc
def test_inside_freed_tensors_are_reused_without_faulting_their_pages_again():
    assert min(faults_per_tensor(3)) > PAGES // 2  # the default: every tensor's pages faulted in and zeroed again
    with heap.reuse_freed_memory():
        assert reused(faults_per_tensor())


@needs_glibc
def test_on_the_way_out_the_free_pages_go_back_to_the_os():
    with heap.reuse_freed_memory():
        faults_per_tensor()
        kept = resident_pages()
    assert kept - resident_pages() > PAGES // 2


@needs_glibc
def test_nested_uses_keep_the_setting_until_the_outermost_ends():
    with heap.reuse_freed_memory():
        with heap.reuse_freed_memory():
            faults_per_tensor()
        assert reused(faults_per_tensor())
        kept = resident_pages()
    assert kept - resident_pages() > PAGES // 2


def test_without_glibc_both_are_no_ops(monkeypatch):
    monkeypatch.setattr(heap, "_libc", lambda: None)
    with heap.reuse_freed_memory():
        heap.return_freed_memory()
