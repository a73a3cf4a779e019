"""`cocosnet translate-dataset`: the PAIRS.csv reader, resumable runs, and the split between accelerate processes.

Runs the embedded demo model (mask-to-image, 128²) on the example scenes, in float32 with one
thread per process, so that runs in different processes give the same bytes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from pipeline_cocosnet import CoCosNetPipeline
from pipeline_cocosnet.evaluation import read_pairs, translate_dataset

SCENES = Path(__file__).resolve().parents[1] / "examples" / "mask-to-image"
IDS = [5001, 5006, 5010, 5012, 5019, 5021]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def write_pairs(folder: Path, count: int = 6, extra_rows: tuple[str, ...] = ()) -> Path:
    """``count`` pairs over the example scenes (each layout with the next scene's appearance), paths relative."""
    rows = ["structure,exemplar,exemplar_structure,name"]
    for k in range(count):
        a, b = IDS[k % len(IDS)], IDS[(k + 1) % len(IDS)]
        rows.append(f"scenes/scene_{a}_mask.png,scenes/scene_{b}.png,scenes/scene_{b}_mask.png,pair{k:02d}")
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "scenes").exists():
        (folder / "scenes").symlink_to(SCENES)
    (folder / "pairs.csv").write_text("\n".join([*rows, *extra_rows]) + "\n")
    return folder / "pairs.csv"


def cli(*args: str, launcher: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", *(launcher or ("pipeline_cocosnet",)), "translate-dataset", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=ENV)


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def test_the_reader_skips_bad_rows_with_their_reasons(tmp_path):
    csv = write_pairs(tmp_path, 2, extra_rows=(
        "scenes/no_such_mask.png,scenes/scene_5001.png,,missing",
        "scenes/scene_5001_mask.png,scenes/scene_5006.png",  # too few fields
        "scenes/scene_5001_mask.png,scenes/scene_5006.png,,pair00",  # a name used before
        ",scenes/scene_5006.png,,no-structure",
    ))  # fmt: skip
    pairs, bad = read_pairs(csv)
    assert [p.name for p in pairs] == ["pair00", "pair01"] and pairs[0].structure == tmp_path / "scenes" / "scene_5001_mask.png"
    assert [(row.line, row.reason.split(":")[0]) for row in bad] == [
        (4, "no such structure file"), (5, "4 fields expected (structure,exemplar,exemplar_structure,name), got 2"),
        (6, "the name 'pair00' is used by an earlier row"), (7, "structure is empty"),
    ]  # fmt: skip


def test_a_file_without_the_required_columns_is_one_error(tmp_path):
    (tmp_path / "pairs.csv").write_text("label,photo\na.png,b.png\n")
    with pytest.raises(ValueError, match="missing: structure, exemplar"):
        read_pairs(tmp_path / "pairs.csv")
    run = cli("--model", "demo", "--pairs", str(tmp_path / "pairs.csv"), "--output", str(tmp_path / "out"))
    assert run.returncode == 2 and "Traceback" not in run.stderr and "missing: structure, exemplar" in run.stderr
    run = cli("--model", "demo", "--pairs", str(tmp_path / "pairs.csv"), "--output", str(tmp_path / "out"), "--batch-size", "0")
    assert run.returncode == 2 and run.stderr.strip() == "cocosnet translate-dataset: error: --batch-size must be at least 1, got 0"


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: every pair in one process (float32, one thread), with a bad row."""
    folder = tmp_path_factory.mktemp("one")
    csv = write_pairs(folder, extra_rows=("scenes/none.png,scenes/scene_5001.png,,broken",))
    run = cli("--model", "demo", "--pairs", str(csv), "--output", str(folder / "out"), "--dtype", "float32", "--quiet")
    return folder, csv, run


def test_a_run_writes_every_pair_reports_the_bad_row_and_exits_1(one_process):
    folder, _, run = one_process
    assert run.returncode == 1, run.stderr  # a failure is not silent
    assert "translate-dataset: 6 done, 0 skipped, 1 failed" in run.stdout
    assert "failed: line 8: no such structure file" in run.stderr and "Traceback" not in run.stderr
    assert sorted(p.name for p in (folder / "out").glob("*.png")) == [f"pair{k:02d}.png" for k in range(6)]
    records = manifest(folder / "out")
    assert sorted(r["name"] for r in records if r["status"] == "done") == [f"pair{k:02d}" for k in range(6)]
    assert [r["line"] for r in records if r["status"] == "failed"] == [8]
    with Image.open(folder / "out" / "pair00.png") as image:
        assert image.size == (128, 128)


@pytest.mark.slow
def test_two_processes_write_every_pair_once_and_the_same_images(one_process, tmp_path):
    folder, csv, _ = one_process
    launcher = (
        "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "--main_process_port", "29531", "-m", "pipeline_cocosnet",
    )  # fmt: skip
    run = cli("--model", "demo", "--pairs", str(csv), "--output", str(tmp_path / "out"), "--dtype", "float32", "--quiet", launcher=launcher)
    assert "translate-dataset: 6 done, 0 skipped, 1 failed" in run.stdout, run.stderr[-3000:]
    done = [r for r in manifest(tmp_path / "out") if r["status"] == "done"]
    assert sorted(r["name"] for r in done) == [f"pair{k:02d}" for k in range(6)]  # each pair exactly once
    assert {r["process"] for r in done} == {0, 1}
    for k in range(6):
        name = f"pair{k:02d}.png"
        assert (tmp_path / "out" / name).read_bytes() == (folder / "out" / name).read_bytes(), name


@pytest.mark.slow
def test_a_killed_run_resumes_and_loses_nothing_that_was_finished(one_process, tmp_path):
    folder, _, _ = one_process
    csv = write_pairs(tmp_path, 18)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pipeline_cocosnet", "translate-dataset", "--model", "demo", "--pairs", str(csv),
               "--output", str(out), "--dtype", "float32", "--quiet"]  # fmt: skip
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list(out.glob("*.png"))) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = sorted(p.name for p in out.glob("*.png"))
    assert 3 <= len(finished) < 18, "the run was not stopped part-way"
    for name in finished:  # whole images only: each was written to a temporary file and renamed
        with Image.open(out / name) as image:
            image.load()
    before = {name: (out / name).read_bytes() for name in finished}
    run = cli("--model", "demo", "--pairs", str(csv), "--output", str(out), "--dtype", "float32", "--quiet")
    assert run.returncode == 0, run.stderr
    assert f"{18 - len(finished)} done, {len(finished)} skipped, 0 failed" in run.stdout
    assert all((out / name).read_bytes() == data for name, data in before.items())  # finished images untouched
    assert len(list(out.glob("*.png"))) == 18 and not list(out.glob(".*.tmp"))
    for k in range(6):  # the same pairs as the reference run: the same images
        assert (out / f"pair{k:02d}.png").read_bytes() == (folder / "out" / f"pair{k:02d}.png").read_bytes()


def test_a_batch_with_a_failing_pair_fails_that_pair_alone(tmp_path):
    csv = write_pairs(tmp_path, 3)
    pairs, _ = read_pairs(csv)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not a PNG")
    pairs[1] = type(pairs[1])(pairs[1].name, pairs[1].structure, broken, pairs[1].exemplar_structure, pairs[1].line)
    pipe = CoCosNetPipeline.from_pretrained("demo")
    pipe.set_progress_bar_config(disable=True)
    summary = translate_dataset(pipe, pairs, tmp_path / "out", batch_size=3, progress=False)
    assert summary.done == 2 and [name for name, _ in summary.failed] == ["pair01"]
    assert "broken.png" in summary.failed[0][1]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["pair00.png", "pair02.png"]


# ---------------------------------------------------------------- PAIRS.csv makers


def test_scene_pairs_are_held_out_and_read_back(tmp_path):
    from pipeline_cocosnet.evaluation.pair_lists import scene_pairs

    csv = scene_pairs(tmp_path / "scenes", count=3, size=64)
    pairs, bad = read_pairs(csv)
    assert [p.name for p in pairs] == ["scene0000", "scene0001", "scene0002"] and not bad
    assert sorted(p.name for p in (tmp_path / "scenes" / "real").iterdir()) == ["scene0000.png", "scene0001.png", "scene0002.png"]
    with pytest.raises(ValueError, match="held out"):
        scene_pairs(tmp_path / "x", count=3, seed=10)


def test_ade20k_pairs_take_the_most_similar_class_histogram_never_the_image_itself(tmp_path):
    import numpy as np

    from pipeline_cocosnet.evaluation.pair_lists import ade20k_pairs

    for folder in ("annotations/validation", "images/validation"):
        (tmp_path / folder).mkdir(parents=True)
    layouts = {"a": (3, 3, 10), "b": (3, 10, 10), "c": (3, 3, 3), "d": (20, 20, 21)}  # class ids of three stripes
    for stem, classes in layouts.items():
        mask = np.repeat(np.array(classes, np.uint8), 8)[:, None].repeat(16, 1)
        Image.fromarray(mask).save(tmp_path / "annotations/validation" / f"{stem}.png")
        Image.new("RGB", (16, 24)).save(tmp_path / "images/validation" / f"{stem}.jpg")
    pairs, _ = read_pairs(ade20k_pairs(tmp_path, tmp_path / "pairs.csv"))
    chosen = {p.name: p.exemplar.stem for p in pairs}
    assert chosen == {"a": "c", "b": "a", "c": "a", "d": "a"}  # d shares no class: the first by name (all 0)


def test_deepfashionhd_pairs_follow_the_retrieval_list(tmp_path):
    from pipeline_cocosnet.evaluation.pair_lists import deepfashionhd_pairs

    for key in ("WOMEN/Dresses/id_1/01_1_front", "WOMEN/Dresses/id_1/02_2_side", "MEN/Tees/id_9/01_1_front"):
        (tmp_path / "img" / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pose" / key).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "img" / f"{key}.jpg")
        for part in ("candidate", "subset"):
            (tmp_path / "pose" / f"{key}_{part}.txt").write_text("0")
    (tmp_path / "test.txt").write_text("img/WOMEN/Dresses/id_1/01_1_front.jpg\nimg/MEN/Tees/id_9/01_1_front.jpg\n")
    (tmp_path / "refs.txt").write_text("img/WOMEN/Dresses/id_1/01_1_front.jpg,img/WOMEN/Dresses/id_1/02_2_side.jpg\n")
    pairs, _ = read_pairs(deepfashionhd_pairs(tmp_path, tmp_path / "test.txt", tmp_path / "refs.txt", tmp_path / "pairs.csv"))
    assert [p.name for p in pairs] == ["WOMEN_Dresses_id_1_01_1_front"]  # the MEN key has no exemplar listed
    assert pairs[0].structure.name == "01_1_front_candidate.txt" and pairs[0].exemplar.name == "02_2_side.jpg"
