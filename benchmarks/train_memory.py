"""Peak memory of one training step on the CPU (issue 19: the frozen ConvGRU's autograd graph).

Builds the :class:`~pipeline_cocosnet.training.trainer.Trainer` on synthetic data, runs one warm-up
step, then measures one more step: the peak resident-set growth over the step (sampled every 2 ms
from /proc/self/statm) and the bytes autograd saved for backward (``saved_tensors_hooks``; counts
a tensor each time it is saved). Run it once per code version in a fresh process, e.g.

    PYTHONPATH=/path/to/checkout python benchmarks/train_memory.py --size 128 --batch-size 2

Random weights; VGG losses off (no weight file needed). Results: benchmarks/results/train_memory.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import torch


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Samples the resident set in a thread; ``peak - start`` is the growth over the block."""

    def __enter__(self):
        self.start = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--nef", type=int, default=32)
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--learn-gru", action="store_true")
    args = parser.parse_args()

    import pipeline_cocosnet
    from pipeline_cocosnet.training.config import TrainConfig
    from pipeline_cocosnet.training.trainer import Trainer

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    config = TrainConfig()
    with tempfile.TemporaryDirectory() as out:
        for key, value in {
            "model.label_channels": 4, "model.nef": args.nef, "model.ngf": args.ngf, "model.ndf": 16,
            "model.iterations": args.iterations, "model.learn_gru": args.learn_gru,
            "data.kind": "synthetic", "data.size": [args.size, args.size], "data.num_samples": 4 * args.batch_size,
            "data.num_classes": 4, "data.num_workers": 0,
            "loss.vgg_feature": 0.0, "loss.perceptual": 0.0, "loss.contextual": 0.0,
            "train.output_dir": out, "train.batch_size": args.batch_size, "train.max_steps": 2,
            "train.tensorboard": False, "train.cpu": True,
        }.items():
            config.set(key, value)
        trainer = Trainer(config)
        batches = iter(trainer.loader)
        trainer.train_step(next(batches))  # warm-up: optimizer states, allocator pools
        batch = next(batches)
        saved = [0]

        def pack(t: torch.Tensor) -> torch.Tensor:
            saved[0] += t.numel() * t.element_size()
            return t

        start = time.perf_counter()
        with PeakRSS() as rss, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            trainer.train_step(batch)
        seconds = time.perf_counter() - start
    mib = 1 << 20
    print(
        f"code {os.path.dirname(pipeline_cocosnet.__file__)}: {args.size}², batch {args.batch_size}, nef {args.nef}, "
        f"ngf {args.ngf}, {args.iterations} iterations, {'learning' if args.learn_gru else 'frozen'} GRU: "
        f"peak RSS growth {(rss.peak - rss.start) / mib:.0f} MiB, autograd saved {saved[0] / mib:.0f} MiB, "
        f"step {seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
