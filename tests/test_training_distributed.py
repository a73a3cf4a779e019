"""Two CPU processes (DDP over gloo) through ``accelerate launch``: a few steps of the synthetic config.

Marked ``slow`` (deselect with ``-m "not slow"``). ``accelerate launch --cpu --num_processes 2``
starts a single process unless MPI is set up, so CPU multi-process runs use the multi-GPU
launcher (torchrun underneath) with our ``--cpu`` flag, which makes accelerate use gloo.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_cocosnet import CoCosNetPipeline

CONFIG = Path(__file__).parents[1] / "configs" / "train_synthetic.yaml"


@pytest.mark.slow
def test_two_process_cpu_run_trains_and_saves(tmp_path):
    output = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
        "-m", "pipeline_cocosnet.training", "--config", str(CONFIG), "--cpu", "--output-dir", str(output),
        "--max-steps", "4", "--set", "train.log_every=2", "--set", "train.checkpoint_every=2",
        "--set", "model.iterations=2", "--set", "data.num_samples=16", "--set", "train.report_to=none",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    print(result.stdout[-3000:], result.stderr[-3000:])
    assert result.returncode == 0
    assert "trained 4 steps" in result.stdout
    state = output / "checkpoints" / "step-0000004"
    assert (state / "random_states_0.pkl").is_file() and (state / "random_states_1.pkl").is_file()  # two ranks
    rows = (output / "losses.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["step", "2", "4"]
    pipe = CoCosNetPipeline.from_pretrained(output / "pipeline")
    assert "batch 2×2×1" in pipe.config.origin  # 2 per process × 2 processes
