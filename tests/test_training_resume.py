"""Training that survives interruption: atomic checkpoints, resume past a broken one, SIGTERM saves.

The runs are real ``python -m pipeline_cocosnet.training`` subprocesses on a tiny synthetic
config (64×64, nef/ngf/ndf 8, one PatchMatch iteration, CPU float32); signals come from outside.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pipeline_cocosnet.training.checkpoints import (
    MANIFEST,
    PAUSE_ENV,
    commit_checkpoint,
    latest_complete_checkpoint,
    list_checkpoints,
    prune_checkpoints,
    verify_checkpoint,
    write_manifest,
)
from pipeline_cocosnet.training.interruption import EXIT_INTERRUPTED
from pipeline_cocosnet.training.monitor import CSVLogger

CONFIG = Path(__file__).parents[1] / "configs" / "train_synthetic.yaml"
TINY = [
    "--set", "model.iterations=1", "--set", "data.num_samples=16", "--set", "train.report_to=none",
    "--set", "train.sample_every=0",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def training_command(output: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "pipeline_cocosnet.training", "--config", str(CONFIG), "--output-dir", str(output), *TINY, *flags]


def train(output: Path, *flags: str) -> subprocess.CompletedProcess:
    result = subprocess.run(training_command(output, *flags), capture_output=True, text=True, timeout=300, env=ENV)
    print(result.stdout[-3000:], result.stderr[-3000:])
    return result


def start(command: list[str], log: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True, env={**ENV, **env})


def wait_for(log: Path, text: str, process: subprocess.Popen, timeout: float = 240) -> None:
    """Poll ``log`` until ``text`` appears; fails if the process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        if process.poll() is not None:
            pytest.fail(f"training ended (code {process.returncode}) before {text!r}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"no {text!r} after {timeout} s:\n{log.read_text()[-3000:]}")


def logged_steps(output: Path) -> list[int]:
    with (output / "losses.csv").open(newline="") as f:
        return [int(row[0]) for row in list(csv.reader(f))[1:]]


# ---------------------------------------------------------------------- the pieces, in process


def fake_checkpoint(checkpoints: Path, step: int, complete: bool = True) -> Path:
    folder = checkpoints / f".step-{step:07d}.tmp"
    (folder / "pipeline").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(os.urandom(1000))
    (folder / "pipeline" / "model_index.json").write_text("{}")
    if complete:
        write_manifest(folder, step)
    return commit_checkpoint(folder, checkpoints / f"step-{step:07d}")


def test_manifest_catches_missing_truncated_and_altered_files(tmp_path):
    folder = fake_checkpoint(tmp_path, 5)
    assert verify_checkpoint(folder) is None
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert "does not match its SHA-256" in verify_checkpoint(folder)
    weights.write_bytes(data[:10])
    assert verify_checkpoint(folder) == "model.safetensors has 10 bytes, the manifest says 1000"
    weights.unlink()
    assert verify_checkpoint(folder) == "model.safetensors is missing"
    (folder / MANIFEST).unlink()
    assert "no checkpoint-manifest.json" in verify_checkpoint(folder)


def test_latest_complete_skips_newer_broken_ones_and_pruning_keeps_the_newest_complete(tmp_path):
    for step in (2, 4, 6):
        fake_checkpoint(tmp_path, step)
    fake_checkpoint(tmp_path, 8, complete=False)
    found, skipped = latest_complete_checkpoint(tmp_path)
    assert found.name == "step-0000006"
    assert [(p.name, "no checkpoint-manifest.json" in why) for p, why in skipped] == [("step-0000008", True)]
    # a resumed run from step 6 writes step 7 with a limit of 1: only older ones go, never step 7, never later ones
    newest = fake_checkpoint(tmp_path, 7)
    removed = prune_checkpoints(tmp_path, 1, newest)
    assert sorted(p.name for p in removed) == ["step-0000002", "step-0000004", "step-0000006"]
    assert [s for s, _ in list_checkpoints(tmp_path)] == [7, 8]
    # rewriting a step replaces the broken folder of that step
    fixed = fake_checkpoint(tmp_path, 8)
    assert verify_checkpoint(fixed) is None and not list(tmp_path.glob(".step-*"))


def test_csv_rows_past_the_checkpoint_are_dropped(tmp_path):
    log = CSVLogger(tmp_path / "losses.csv")
    for step in range(1, 7):
        log.log(step, {"D": float(step), "G": 0.5})
    assert log.drop_after(4) == 2
    log.log(5, {"D": 5.0, "G": 0.5})
    assert logged_steps(tmp_path) == [1, 2, 3, 4, 5]
    assert CSVLogger(tmp_path / "losses.csv").fields == ["step", "D", "G"]


def test_a_repeated_signal_is_one_request_then_a_later_one_stops_at_once():
    script = (
        "import os, signal, time\n"
        "from pipeline_cocosnet.training import interruption\n"
        "interruption.REPEAT_WINDOW_S = 0.5\n"
        "with interruption.StopRequest() as stop:\n"
        "    os.kill(os.getpid(), signal.SIGTERM); os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(0.1); print('requested', stop.requested, stop.signal_name, flush=True)\n"
        "    time.sleep(0.6); os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)\n"
        "    print('still running', flush=True)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=ENV)
    assert "requested True SIGTERM" in result.stdout and "still running" not in result.stdout
    assert result.returncode == -signal.SIGTERM
    assert "second SIGTERM: stopping at once" in result.stderr


# ---------------------------------------------------------------------- whole runs, as subprocesses


def test_truncated_newest_checkpoint_resumes_from_the_previous_one_with_a_warning(tmp_path):
    output = tmp_path / "run"
    first = train(output, "--max-steps", "4", "--set", "train.checkpoint_every=2", "--set", "train.log_every=1")
    assert first.returncode == 0
    weights = output / "checkpoints" / "step-0000004" / "model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[:100])  # what a kill during an in-place write leaves
    named = train(output, "--max-steps", "6", "--resume", str(weights.parent))
    assert named.returncode == 2 and "Traceback" not in named.stderr
    assert f"is incomplete: model.safetensors has 100 bytes, the manifest says {size}" in named.stderr.strip().splitlines()[-1]
    second = train(output, "--max-steps", "6", "--set", "train.checkpoint_every=2", "--set", "train.log_every=1", "--resume", "latest")
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"skipping checkpoint {output / 'checkpoints' / 'step-0000004'}: model.safetensors has 100 bytes, the manifest says {size}" in second.stdout
    assert re.search(r"resumed from \S*step-0000002 at step 2", second.stdout)
    assert "trained 6 steps" in second.stdout
    assert logged_steps(output) == [1, 2, 3, 4, 5, 6]
    assert verify_checkpoint(weights.parent) is None  # rewritten by the resumed run


def test_sigterm_mid_interval_saves_the_step_reached_and_resuming_equals_an_uninterrupted_run(tmp_path):
    flags = ["--set", "train.checkpoint_every=1000", "--set", "train.log_every=2"]
    output, log = tmp_path / "interrupted", tmp_path / "interrupted.log"
    process = start(training_command(output, "--max-steps", "1000", *flags), log)
    wait_for(log, "step 4:", process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == EXIT_INTERRUPTED
    text = log.read_text()
    stopped = re.search(r"stopped by SIGTERM after step (\d+); checkpoint saved to (\S+)\.", text)
    assert stopped, text[-3000:]
    step = int(stopped[1])
    assert step >= 4 and "--resume latest" in text
    assert [s for s, _ in list_checkpoints(output / "checkpoints")] == [step]
    assert verify_checkpoint(Path(stopped[2])) is None
    assert logged_steps(output) == list(range(2, step + 1, 2))

    end = step + 3  # a log row and the end of training after the resume
    resumed = train(output, "--max-steps", str(end), *flags, "--resume", "latest")
    assert resumed.returncode == 0 and f"at step {step}" in resumed.stdout
    plain = train(tmp_path / "plain", "--max-steps", str(end), *flags)
    assert plain.returncode == 0
    for name in ("model.safetensors", "model_1.safetensors"):  # generator, discriminator
        got = load_file(output / "checkpoints" / f"step-{end:07d}" / name)
        want = load_file(tmp_path / "plain" / "checkpoints" / f"step-{end:07d}" / name)
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in want), name
    assert (output / "losses.csv").read_text() == (tmp_path / "plain" / "losses.csv").read_text()


def test_kill_during_a_checkpoint_write_leaves_no_folder_resume_would_take(tmp_path):
    output, log = tmp_path / "run", tmp_path / "run.log"
    flags = ["--set", "train.checkpoint_every=2", "--set", "train.log_every=1"]
    process = start(training_command(output, "--max-steps", "6", *flags), log, **{PAUSE_ENV: "4"})
    wait_for(log, "test hook: pausing inside the write", process)
    process.kill()  # SIGKILL: no handler runs
    process.wait(timeout=60)
    checkpoints = output / "checkpoints"
    assert (checkpoints / ".step-0000004.tmp" / "model.safetensors").is_file()  # the write was under way
    assert [s for s, _ in list_checkpoints(checkpoints)] == [2]
    found, skipped = latest_complete_checkpoint(checkpoints)
    assert found.name == "step-0000002" and skipped == []
    resumed = train(output, "--max-steps", "4", *flags, "--resume", "latest")
    assert resumed.returncode == 0
    assert "a checkpoint write that did not finish" in resumed.stdout and "at step 2" in resumed.stdout
    assert not (checkpoints / ".step-0000004.tmp").exists()
    assert verify_checkpoint(checkpoints / "step-0000004") is None
    assert logged_steps(output) == [1, 2, 3, 4]


@pytest.mark.slow
def test_two_process_run_stops_cleanly_on_sigterm_with_one_checkpoint(tmp_path):
    """SIGTERM to the launcher (as a scheduler sends it): it forwards the signal to both workers."""
    output, log = tmp_path / "ddp", tmp_path / "ddp.log"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29519",
        "-m", "pipeline_cocosnet.training", "--config", str(CONFIG), "--cpu", "--output-dir", str(output), *TINY,
        "--max-steps", "1000", "--set", "train.checkpoint_every=1000", "--set", "train.log_every=1",
    ]
    process = start(command, log)
    wait_for(log, "step 2:", process, timeout=300)
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=120)
    text = log.read_text()
    print(text[-4000:], "launcher exit code", code)
    stopped = re.search(r"stopped by SIGTERM after step (\d+)", text)
    assert stopped, text[-3000:]
    step = int(stopped[1])
    found = list_checkpoints(output / "checkpoints")
    assert [s for s, _ in found] == [step]
    folder = found[0][1]
    assert verify_checkpoint(folder) is None
    for rank in (0, 1):
        assert (folder / f"random_states_{rank}.pkl").is_file() and (folder / f"rank_state_{rank}.pt").is_file()
    assert not list((output / "checkpoints").glob(".step-*"))
    assert "Traceback" not in text
    assert code == 128 + signal.SIGTERM  # accelerate's multi-process launcher, once its workers stopped
