"""The Gradio demo: weights configuration, every tab's API via gradio_client, bad uploads, `python app.py`, a real browser.

Tiny randomly initialised pipelines (64×64) are written to a temp folder; nothing is
downloaded (HF_HUB_OFFLINE=1). The browser test drives Debian's chromium through
Playwright and skips when either is missing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from pipeline_cocosnet import CoCosNetPipeline  # noqa: E402
from pipeline_cocosnet.app import PipelineStore, WeightsConfig, build_demo, env_var  # noqa: E402
from pipeline_cocosnet.app.inputs import editor_structure  # noqa: E402
from pipeline_cocosnet.app.ui import DISPLAY_SIDE  # noqa: E402
from pipeline_cocosnet.app.weights import DEMO_NOTE, parse_weights_args, read_config_file  # noqa: E402
from pipeline_cocosnet.processing.formats.ade20k import ADE20K_PALETTE  # noqa: E402

from .conftest import tiny_models, translate_example_in_browser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SIZE = 64
CHANNELS = {"mask-to-image": 151, "edge-to-face": 1, "pose-to-body": 20}

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _demo_available() -> bool:
    try:
        CoCosNetPipeline.from_pretrained("demo")
    except Exception:  # noqa: BLE001 - any failure: not packaged in this checkout
        return False
    return True


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("weights")
    paths = {}
    for task, channels in CHANNELS.items():
        pipe = CoCosNetPipeline(*tiny_models(channels), task=task, resolution=(SIZE, SIZE))
        pipe.save_pretrained(folder / task)
        paths[task] = str(folder / task)
    return paths


@pytest.fixture(scope="module")
def server(weights):
    """The demo served in-process on a free port: (url, store)."""
    if _demo_available():  # the packaged procedural-scene model, as `python app.py` uses it by default
        weights = {**weights, "mask-to-image": "demo"}
    config = WeightsConfig.resolve(weights, environ={})
    store = PipelineStore(config, device="cpu")
    demo = build_demo(store=store, examples_dir=EXAMPLES)
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(server_port=_free_port(), prevent_thread_lock=True, quiet=True, allowed_paths=[str(EXAMPLES)])
    yield url, store
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server[0], verbose=False, download_files=True)


def _size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def _editor(path) -> dict:
    return {"background": handle_file(str(path)), "layers": [], "composite": None, "id": None}


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict[str, Path]:
    """A small ADE20k index mask (sky over grass), its "photo", and a mask with an unknown colour."""
    folder = tmp_path_factory.mktemp("scene")
    mask = np.zeros((96, 128), np.uint8)
    mask[:40], mask[40:] = 3, 10
    Image.fromarray(mask).save(folder / "mask.png")
    photo = np.where(mask[..., None] == 3, [[[120, 170, 230]]], [[[60, 150, 50]]]).astype(np.uint8)
    Image.fromarray(photo).save(folder / "photo.png")
    bad = np.zeros((96, 128, 3), np.uint8)
    bad[:40] = ADE20K_PALETTE[2]
    bad[40:] = (1, 2, 3)  # no ADE20k class has this colour
    Image.fromarray(bad).save(folder / "unknown_colours.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a PNG")
    Image.new("RGB", (8, 8)).save(folder / "tiny.png")
    return {p.stem: p for p in folder.iterdir()}


# ---------------------------------------------------------------- configuration


def test_weights_precedence_cli_env_config_default(tmp_path):
    config_file = tmp_path / "app.toml"
    config_file.write_text('[weights]\n"pose-to-body" = "from-config"\n"edge-to-face" = "edges-config"\n')
    table = read_config_file(config_file)["weights"]
    environ = {env_var("pose-to-body"): "from-env", env_var("edge-to-face"): ""}
    config = WeightsConfig.resolve(parse_weights_args(["pose-to-body=from-cli"]), table, environ)
    assert config.sources["pose-to-body"] == "from-cli"
    assert config.sources["edge-to-face"] == "edges-config" and config.origins["edge-to-face"] == "config file"
    assert config.sources["oil-portrait"] == "edges-config"  # oil-portrait runs the edge-to-face model
    assert config.sources["mask-to-image"] == "demo" and DEMO_NOTE in config.describe("mask-to-image")
    assert WeightsConfig.resolve({}, None, environ).sources["pose-to-body"] == "from-env"
    with pytest.raises(ValueError, match="unknown task 'faces'"):
        parse_weights_args(["faces=x"])


def test_missing_weights_say_how_to_get_them(tmp_path):
    store = PipelineStore(WeightsConfig.resolve({"edge-to-face": str(tmp_path / "nowhere")}, environ={}, demo_default=False))
    with pytest.raises(RuntimeError, match="cocosnet convert --corr latest_net_Corr.pth"):
        store.get("pose-to-body")
    with pytest.raises(RuntimeError, match="no such folder: .*nowhere.*train_metfaces"):
        store.get("edge-to-face")


def test_drawn_strokes_snap_to_palette_and_upload_stays_strict():
    background = np.zeros((32, 32, 4), np.uint8)
    background[..., :3], background[..., 3] = ADE20K_PALETTE[2], 255  # sky
    layer = np.zeros((32, 32, 4), np.uint8)
    layer[16:, :, :3] = np.array(ADE20K_PALETTE[9]) + 3  # grass, slightly off (anti-aliasing)
    layer[16:, :, 3] = 255
    mask, how = editor_structure({"background": background, "layers": [layer]}, extract=None)
    assert how == "uploaded mask + strokes"
    assert (mask[:16] == 3).all() and (mask[16:] == 10).all()
    background[:16, :, :3] = (1, 2, 3)
    with pytest.raises(Exception, match="colour"):
        editor_structure({"background": background, "layers": []}, extract=None)


# ---------------------------------------------------------------- every tab through gradio_client


def test_every_tab_answers_with_images_of_the_model_size(server, client, scene):
    store = server[1]
    pose = EXAMPLES / "pose-to-body"
    photos = EXAMPLES / "photos"
    calls = {
        "/mask_to_image": (_editor(scene["mask"]), handle_file(str(scene["photo"])), handle_file(str(scene["mask"]))),
        "/edge_to_face": (
            handle_file(str(EXAMPLES / "edge-to-face" / "drawn_face_edges.png")),
            handle_file(str(photos / "morisot_young_woman_in_mauve.jpg")),
            False,
        ),
        "/pose_to_body": (
            [handle_file(str(pose / "standing.json"))],
            handle_file(str(pose / "mannequin_waving.png")),
            None,
            [handle_file(str(pose / "waving.json"))],
        ),
        "/oil_portrait": (handle_file(str(photos / "grace_hopper.jpg")), handle_file(str(photos / "morisot_self_portrait_1885.jpg"))),
    }
    for api_name, args in calls.items():
        result, warps, structure_view, exemplar_view, download = client.predict(*args, api_name=api_name)
        height, width = store.get(api_name[1:].replace("_", "-")).config.resolution
        assert _size(download) == (width, height), api_name  # the download: the true resolution
        factor = _size(result)[0] // width  # the display copy: enlarged by a whole factor to DISPLAY_SIDE
        assert _size(result) == (width * factor, height * factor) and max(_size(result)) >= DISPLAY_SIDE, api_name
        with Image.open(result) as shown, Image.open(download) as true:
            assert np.array_equal(np.asarray(shown.convert("RGB"))[::factor, ::factor], np.asarray(true.convert("RGB")))
        assert [_size(w["image"]) for w in warps] == [(width >> k, height >> k) for k in (3, 2, 1, 0)], api_name
        assert _size(structure_view) == _size(exemplar_view) == (width, height), api_name
    rendered = np.asarray(Image.open(structure_view))
    assert rendered.std() > 0  # the aligned photo's edges are drawn, not a blank picture


def test_translations_stream_the_warps_as_the_levels_finish(client, scene):
    job = client.submit(
        _editor(scene["mask"]), handle_file(str(scene["photo"])), handle_file(str(scene["mask"])), api_name="/mask_to_image"
    )
    job.result()
    outputs = job.outputs()
    assert len(outputs) == 5  # one update per level, then the result
    assert all(update[0] is None for update in outputs[:4])  # no result yet
    assert [len(update[1]) for update in outputs] == [1, 2, 3, 4, 4]
    captions = [item["caption"] for item in outputs[-1][1]]  # gallery items: {"image": …, "caption": …}
    assert [item["caption"] for item in outputs[3][1]] == captions
    sides = [int(caption.rsplit("×", 1)[1]) for caption in captions]
    assert sides == sorted(sides) and sides[1:] == [2 * s for s in sides[:-1]]  # coarsest first
    assert outputs[-1][0] is not None and outputs[-1][4] is not None


def _pose_args() -> tuple:
    pose = EXAMPLES / "pose-to-body"
    return [handle_file(str(pose / "standing.json"))], handle_file(str(pose / "mannequin_waving.png")), None, [handle_file(str(pose / "waving.json"))]


def _translation_workers() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name.startswith("cocosnet-translate-")]


def test_stop_ends_the_running_translation_within_one_level(server, client, scene, monkeypatch):
    """Stop (Gradio's cancels=, also what happens when the visitor leaves: Gradio closes the handler's generator)
    stops the worker thread at the next level's end: the later levels and the translator never run."""
    store = server[1]
    pipe = store.get("mask-to-image")
    levels, translated = [], []
    match, translator_forward = pipe.correspondence.match, pipe.translator.forward

    def slow_match(*args, callback=None, **kwargs):
        def slow_level_end(level, warp):
            levels.append(level)
            time.sleep(0.6)  # a level as long as a real one at 512² (the tiny model's take milliseconds)
            callback(level, warp)

        return match(*args, callback=slow_level_end, **kwargs)

    monkeypatch.setattr(pipe.correspondence, "match", slow_match)
    monkeypatch.setattr(pipe.translator, "forward", lambda *a, **k: translated.append(1) or translator_forward(*a, **k))
    job = client.submit(_editor(scene["mask"]), handle_file(str(scene["photo"])), handle_file(str(scene["mask"])), api_name="/mask_to_image")
    deadline = time.monotonic() + 60
    while not job.outputs() and time.monotonic() < deadline:  # the first level's warp reached the client
        time.sleep(0.02)
    assert job.outputs(), "no warp streamed"
    job.cancel()
    deadline = time.monotonic() + 10
    while _translation_workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _translation_workers(), "the worker thread still runs after Stop"
    # Gradio closes the handler once it yields the level in progress when Stop arrives: the worker then stops
    # within one PatchMatch iteration of the next level (the dense level 0 has none; its warp is what was awaited)
    assert len(levels) <= 2 and not translated, (levels, translated)
    monkeypatch.undo()
    result = client.predict(_editor(scene["mask"]), handle_file(str(scene["photo"])), handle_file(str(scene["mask"])), api_name="/mask_to_image")
    assert result[4] is not None  # the tab translates again


def test_a_tab_whose_weights_are_loading_does_not_hold_up_the_other_tabs(server, client, scene, monkeypatch):
    import threading

    store = server[1]
    loading, release = threading.Event(), threading.Event()
    load = store._load

    def slow_load(source):
        if source == store.config.sources["pose-to-body"]:
            loading.set()
            release.wait(60)  # e.g. `release:deepfashionhd` downloading for minutes
        return load(source)

    monkeypatch.setattr(store, "_loaded", {})
    monkeypatch.setattr(store, "_load", slow_load)
    try:
        pose_job = client.submit(*_pose_args(), api_name="/pose_to_body")
        assert loading.wait(60)
        started = time.monotonic()
        result = client.predict(_editor(scene["mask"]), handle_file(str(scene["photo"])), handle_file(str(scene["mask"])), api_name="/mask_to_image")
        assert result[4] is not None and not pose_job.done()  # answered while pose-to-body's weights still load
        print(f"mask-to-image answered in {time.monotonic() - started:.2f} s while pose-to-body loaded")
    finally:
        release.set()
    assert pose_job.result()[4] is not None


def test_streamed_images_are_files_written_once_per_request():
    """Updates repeat earlier images (structure views, the warps so far); each goes out as one file, never rewritten
    (Gradio rewrote a PIL output's cached copy on every update, racing the page's fetch of the previous one)."""
    from types import SimpleNamespace

    from pipeline_cocosnet.app.ui import _stream

    warps = [Image.new("RGB", (s, s), (s, 0, 0)) for s in (8, 16)]
    result = Image.new("RGB", (16, 16), "blue")
    view = Image.new("RGB", (16, 16), "green")
    updates, mtimes = [], []
    for update in _stream(iter([*warps, SimpleNamespace(images=[result], warps=[[w] for w in warps])]), view, None):
        updates.append(update)
        mtimes.append({p: os.stat(p).st_mtime_ns for p in [update[2], *(path for path, _ in update[1])]})
        if update[4] is not None:
            with Image.open(update[4]) as download:
                sizes = download.size, Image.open(update[0]).size
    folder = Path(updates[0][2]).parent
    assert updates[0][2] == updates[1][2] == updates[2][2] and updates[0][3] is None  # the same structure view file
    assert updates[1][1][0] == updates[0][1][0]  # the first warp, repeated, is the same file
    assert all(mtimes[k][p] == mtimes[0][p] for k in (1, 2) for p in mtimes[0] if p in mtimes[k])  # never rewritten
    assert sizes == ((16, 16), (16 * 32, 16 * 32)) and Path(updates[2][4]).name == "cocosnet-result-16x16.png"
    assert not folder.exists()  # the request's folder goes once the stream ends (Gradio has copied what it sent)


def test_bad_uploads_get_clear_errors_and_the_app_keeps_serving(server, client, scene):
    exemplar = handle_file(str(scene["photo"]))
    cases = [
        (("/edge_to_face", handle_file(str(scene["corrupt"])), exemplar, False), "cannot read the upload 'corrupt.png' as an image"),
        (("/mask_to_image", _editor(scene["corrupt"]), exemplar, None), "cannot read the upload as an image"),
        (("/mask_to_image", _editor(scene["unknown_colours"]), exemplar, handle_file(str(scene["mask"]))), "colour"),
        (("/edge_to_face", handle_file(str(scene["tiny"])), exemplar, False), "8×8 pixels"),
        (("/mask_to_image", _editor(scene["mask"]), exemplar, handle_file(str(scene["tiny"]))), "8×8 pixels"),
    ]
    for (api_name, *args), message in cases:
        with pytest.raises(gradio_client.exceptions.AppError, match=message):
            client.predict(*args, api_name=api_name)
    result = client.predict(_editor(scene["mask"]), exemplar, handle_file(str(scene["mask"])), api_name="/mask_to_image")[4]
    assert _size(result)[::-1] == tuple(server[1].get("mask-to-image").config.resolution)


def test_suggest_exemplar_ranks_the_gallery(client):
    pose = EXAMPLES / "pose-to-body"
    exemplar, exemplar_pose, ranking = client.predict([handle_file(str(pose / "walking.json"))], None, api_name="/suggest_pose_to_body")
    assert Path(exemplar).name.startswith("mannequin_") and Path(exemplar_pose[0]).suffix == ".json"
    assert ranking.count("score") == 3


def test_tab_without_weights_explains_and_others_keep_working(server, client, scene):
    _, store = server
    pose = EXAMPLES / "pose-to-body"
    args = ([handle_file(str(pose / "walking.json"))], handle_file(str(pose / "mannequin_standing.png")), None, None)
    source = store.config.sources.pop("pose-to-body")
    try:
        with pytest.raises(gradio_client.exceptions.AppError, match="no weights configured.*cocosnet convert"):
            client.predict(*args, api_name="/pose_to_body")
    finally:
        store.config.sources["pose-to-body"] = source


# ---------------------------------------------------------------- python app.py


def test_app_py_starts_from_env_weights_and_serves(weights, tmp_path):
    port = _free_port()
    env = {**os.environ, env_var("pose-to-body"): weights["pose-to-body"], "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--no-demo-weights", "--device", "cpu"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 60
        while True:
            try:
                page = urllib.request.urlopen(url, timeout=2).read().decode()
                break
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    pytest.fail(f"app.py did not serve {url}:\n{process.stdout.read() if process.poll() is not None else ''}")
                time.sleep(0.5)
        assert "CoCosNet v2" in page
        # the tabs' weight notes are in the page config: pose-to-body from the env var, edge-to-face missing
        assert f"(from {env_var('pose-to-body')})" in page and "No weights configured for edge-to-face" in page
        client = Client(url, verbose=False)
        with pytest.raises(gradio_client.exceptions.AppError, match="edge-to-face: no weights configured"):
            image = handle_file(str(EXAMPLES / "pose-to-body" / "mannequin_walking.png"))
            client.predict(image, image, False, api_name="/edge_to_face")
    finally:
        process.terminate()
        process.wait(timeout=20)


# ---------------------------------------------------------------- a real browser



@pytest.mark.browser
def test_browser_switches_tabs_and_translates_an_example(server, tmp_path, chromium):
    playwright, executable = chromium
    url, store = server
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(url)
            for title in ("Mask → image", "Edges → face", "Pose → body", "Oil portrait"):
                page.get_by_role("tab", name=title).click()
                page.wait_for_timeout(300)
                page.screenshot(path=str(tmp_path / f"tab_{title.split()[0].lower()}.png"))
            # pose-to-body: click the first example, then Translate
            page.get_by_role("tab", name="Pose → body").click()
            page.get_by_text("standing pose, waving mannequin's look").click()
            page.wait_for_timeout(500)
            page.locator("#pose-to-body-translate").click()
            result = page.locator("#pose-to-body-result img")
            result.wait_for(state="visible", timeout=30_000)
            page.wait_for_function(
                "() => { const i = document.querySelector('#pose-to-body-result img'); return i && i.complete && i.naturalWidth > 0; }",
                timeout=30_000,
            )
            factor = -(-DISPLAY_SIDE // SIZE)  # shown enlarged by a whole factor
            assert result.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [SIZE * factor, SIZE * factor]
            assert page.locator("#pose-to-body-warps img").count() == 4
            gallery_box = page.locator("#pose-to-body-warps").bounding_box()
            for k in range(4):  # every warp whole inside the gallery (a fixed height cropped them), captions shown
                box = page.locator("#pose-to-body-warps img").nth(k).bounding_box()
                assert box["y"] >= gallery_box["y"] - 1 and box["y"] + box["height"] <= gallery_box["y"] + gallery_box["height"] + 1
            caption = page.locator("#pose-to-body-warps").get_by_text(f"warped exemplar {SIZE}×{SIZE}").first
            assert caption.is_visible()
            page.locator("#pose-to-body-stop").wait_for(state="hidden", timeout=10_000)  # Stop goes with the translation
            page.screenshot(path=str(tmp_path / "pose_result.png"), full_page=True)
            # mask-to-image: an example loads into the mask editor and translates
            page.get_by_role("tab", name="Mask → image").click()
            rows = json.loads((EXAMPLES / "mask-to-image" / "examples.json").read_text())["examples"]
            translate_example_in_browser(page, rows[0]["label"], timeout_ms=30_000)
            source = page.locator("#mask-to-image-result img").get_attribute("src")
            page.screenshot(path=str(tmp_path / "mask_result.png"), full_page=True)
        finally:
            browser.close()
    assert len(list(tmp_path.glob("*.png"))) == 6
    resolution = tuple(store.get("mask-to-image").config.resolution)
    shown = Image.open(urllib.request.urlopen(urllib.parse.urljoin(url, source))).convert("RGB")
    factor = shown.width // resolution[1]
    assert shown.size == (resolution[1] * factor, resolution[0] * factor)
    result = np.asarray(shown, np.float64)[::factor, ::factor]  # the display copy is a whole-factor enlargement
    if store.config.sources["mask-to-image"] == "demo":  # trained weights: the result follows the mask
        with Image.open(EXAMPLES / "mask-to-image" / rows[0]["structure"]) as mask_file:
            mask = np.asarray(mask_file.resize(resolution[::-1], Image.NEAREST))
        grey = result.mean(-1)
        assert grey.std() > 5, "the result is (nearly) constant"
        between = sum((mask == c).sum() * (grey[mask == c].mean() - grey.mean()) ** 2 for c in np.unique(mask)) / grey.size
        assert between / grey.var() > 0.2, "the result's regions do not follow the mask"


@pytest.mark.browser
def test_browser_gallery_clicks_fill_the_exemplar_on_every_tab(server, tmp_path, chromium):
    playwright, executable = chromium
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(server[0])
            for task, title in (("mask-to-image", "Mask → image"), ("edge-to-face", "Edges → face"),
                                ("pose-to-body", "Pose → body"), ("oil-portrait", "Oil portrait")):  # fmt: skip
                page.get_by_role("tab", name=title).click()
                page.locator(f"#{task}-gallery img").first.click()
                page.wait_for_function(
                    f"() => {{ const i = document.querySelector('#{task}-exemplar img'); return i && i.complete && i.naturalWidth > 0; }}",
                    timeout=30_000,
                )
                page.wait_for_timeout(300)
                assert "Error" not in page.locator(f"#{task}-exemplar").inner_text(), task  # no red badge in the box
                page.screenshot(path=str(tmp_path / f"gallery_{task}.png"))
        finally:
            browser.close()
