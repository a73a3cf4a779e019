"""`cocosnet fetch-release` and `release:` weights, against a loopback HTTP server started by the tests.

Nothing leaves the machine: a server on 127.0.0.1 serves a release-shaped zip built from the
parity fixture (the research code's checkpoint folder, nested, with the Corr archive's
packaging defect), and can cut the connection, answer 404, or serve an HTML page or a zip
without checkpoints. Google Drive links go through gdown, replaced here by a stand-in.
"""

from __future__ import annotations

import http.server
import os
import re
import socket
import sys
import threading
import types
import zipfile
from pathlib import Path

import pytest

from pipeline_cocosnet import CoCosNetPipeline
from pipeline_cocosnet.cli import main
from pipeline_cocosnet.release import RELEASES, ReleaseError, cache_root, download, fetch_release

from .release_files import assert_published_weights, write_release_checkpoints

NESTED = "CoCosNet-v2-release/checkpoints/deepfashionHD"


class ReleaseServer(http.server.ThreadingHTTPServer):
    """Serves ``files`` (path → bytes) with Range/If-Range support; records each request's path and Range header.

    ``cut_next`` paths get their next full answer cut after half of the body (the connection closes).
    """

    daemon_threads = True

    def __init__(self, files: dict[str, bytes]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files
        self.requests: list[tuple[str, str | None]] = []
        self.cut_next: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: ReleaseServer

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Range")))
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        etag = f'"{len(body)}"'
        start = 0
        ranged = self.headers.get("Range")
        if ranged and self.headers.get("If-Range", etag) == etag:
            start = int(ranged.split("=")[1].split("-")[0])
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("ETag", etag)
        self.end_headers()
        if self.path in self.server.cut_next and not start:
            self.server.cut_next.discard(self.path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body[start:])


@pytest.fixture(scope="module")
def release_zip(tmp_path_factory) -> bytes:
    """A release-shaped zip: the checkpoint folder (Corr with its foreign entries) nested two folders deep."""
    root = tmp_path_factory.mktemp("release-zip")
    folder = write_release_checkpoints(root / "files")
    path = root / "release.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("CoCosNet-v2-release/README.txt", "CoCosNet v2 pretrained model")
        for name in ("latest_net_Corr.pth", "latest_net_G.pth", "latest_net_D.pth"):
            archive.write(folder / name, f"{NESTED}/{name}")
    return path.read_bytes()


@pytest.fixture(scope="module")
def server(release_zip):
    no_checkpoints = _zip_bytes({"docs/README.txt": b"nothing here", "checkpoints/x/latest_net_D.pth": b"0"})
    files = {
        "/release.zip": release_zip,
        "/page.zip": b"<!DOCTYPE html><html><body>Google Drive - quota exceeded</body></html>",
        "/empty.zip": no_checkpoints,
    }
    httpd = ReleaseServer(files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("COCOSNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("COCOSNET_RELEASE_URL_DEEPFASHIONHD", raising=False)
    return tmp_path / "cache"


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/release.zip"  # nothing listens there any more


# ---------------------------------------------------------------- download


def test_download_resumes_after_a_cut_connection(server, release_zip, tmp_path):
    server.cut_next.add("/release.zip")
    before = len(server.requests)
    path = download(f"{server.url}/release.zip", tmp_path / "release.zip", progress=False)
    assert path.read_bytes() == release_zip
    requests = server.requests[before:]
    assert requests[0] == ("/release.zip", None)
    assert requests[1] == ("/release.zip", f"bytes={len(release_zip) // 2}-")  # only the missing half asked for
    assert not (tmp_path / "release.zip.part").exists()


def test_a_partial_download_left_by_an_earlier_run_is_resumed(server, release_zip, tmp_path):
    (tmp_path / "release.zip.part").write_bytes(release_zip[:1000])
    (tmp_path / "release.zip.part.validator").write_text(f'"{len(release_zip)}"')
    before = len(server.requests)
    download(f"{server.url}/release.zip", tmp_path / "release.zip", progress=False)
    assert (tmp_path / "release.zip").read_bytes() == release_zip
    assert server.requests[before:] == [("/release.zip", "bytes=1000-")]


# ---------------------------------------------------------------- fetch-release


def test_download_progress_follows_the_hubs_progress_bar_switch(server, tmp_path, capsys):
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    download(f"{server.url}/release.zip", tmp_path / "shown.zip", progress=True)
    assert "downloading shown.zip" in capsys.readouterr().err
    disable_progress_bars()  # what HF_HUB_DISABLE_PROGRESS_BARS=1 does at import
    try:
        download(f"{server.url}/release.zip", tmp_path / "hidden.zip", progress=True)
    finally:
        enable_progress_bars()
    assert "downloading hidden.zip" not in capsys.readouterr().err and (tmp_path / "hidden.zip").is_file()


def test_the_cache_is_huggingface_hubs_assets_cache_and_an_old_cache_moves_there(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("COCOSNET_CACHE", raising=False)
    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_ASSETS_CACHE", str(tmp_path / "hf" / "assets"))
    legacy = tmp_path / "hf" / "cocosnet"
    (legacy / "converted" / "ckpt-123").mkdir(parents=True)
    (legacy / "converted" / "ckpt-123" / "model_index.json").write_text("{}")
    (legacy / "downloads").mkdir()
    (legacy / "downloads" / "release.zip").write_bytes(b"zip")
    root = cache_root()
    assert root == tmp_path / "hf" / "assets" / "pipeline_cocosnet" / "release" / "cache"
    assert (root / "converted" / "ckpt-123" / "model_index.json").read_text() == "{}"
    assert (root / "downloads" / "release.zip").read_bytes() == b"zip" and not legacy.exists()
    assert cache_root() == root  # nothing left to move: the same folder, untouched


def test_fetch_release_downloads_finds_converts_and_caches(server, cache, tmp_path, capsys):
    url = f"{server.url}/release.zip"
    output = tmp_path / "deepfashionhd"
    assert main(["fetch-release", "deepfashionhd", "--url", url, "--output", str(output), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert f"pipeline folder: {output.resolve()}" in out
    assert "ignored 2 other entries" in err  # the Corr archive's foreign entries, one note line
    assert_published_weights(output)
    pipe = CoCosNetPipeline.from_pretrained(output)
    assert pipe.config.task == "pose-to-body" and list(pipe.config.resolution) == [512, 512]
    assert pipe.config.license == "mit"
    card = (output / "README.md").read_text()
    assert "license: mit" in card and url in card and "published CoCosNet v2 release" in card
    assert "training_data: DeepFashionHD" in card and pipe.config.dataset.startswith("DeepFashionHD")

    before = len(server.requests)
    assert main(["fetch-release", "--url", url, "--output", str(output), "--quiet"]) == 0  # cache hit
    assert len(server.requests) == before
    assert fetch_release(url=url, output=output) == output


def test_fetch_release_default_folder_is_in_the_cache_and_a_mirror_env_var_is_used(server, cache, monkeypatch):
    monkeypatch.setenv("COCOSNET_RELEASE_URL_DEEPFASHIONHD", f"{server.url}/release.zip")
    folder = fetch_release(progress=False)
    assert folder == cache / "pipelines" / "deepfashionhd"
    assert (folder / "model_index.json").is_file()
    assert sorted(p.name for p in (cache / "downloads").iterdir()) == [next((cache / "downloads").glob("*.zip")).name]


def test_fetch_release_from_a_hand_downloaded_archive(release_zip, cache, tmp_path):
    archive = tmp_path / "Downloads" / "release.zip"
    archive.parent.mkdir()
    archive.write_bytes(release_zip)
    folder = fetch_release(archive=archive, output=tmp_path / "out", variant="fp16")
    assert (folder / "translator" / "diffusion_pytorch_model.fp16.safetensors").is_file()
    assert "release.zip (downloaded by hand from https://drive.google.com/" in (folder / "README.md").read_text()


def test_google_drive_links_go_through_gdown(release_zip, cache, monkeypatch, tmp_path):
    calls = []

    def fake_download(url, output, quiet, resume):
        calls.append((url, resume))
        Path(output).write_bytes(release_zip)
        return output

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=fake_download))
    folder = fetch_release(output=tmp_path / "out", progress=False)
    assert calls == [(RELEASES["deepfashionhd"].url, True)]
    assert_published_weights(folder)


def test_google_drive_without_gdown_says_how_to_install_it(cache, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gdown", None)  # import gdown → ImportError
    with pytest.raises(ReleaseError, match=r"needs gdown: pip install \"pipeline_cocosnet\[release\]\""):
        fetch_release(output=tmp_path / "out", progress=False)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("closed port", r"cannot download .*: Connection refused \(no network connection\?\)\. To provide it by hand"),
        ("/missing.zip", r"cannot download .*/missing\.zip: HTTP 404 Not Found"),
        ("/page.zip", r"is an HTML page \(\d+ bytes\) \(Google Drive answers with a page .*--archive\); it was deleted"),
        ("/empty.zip", r"the archive .* has no latest_net_Corr\.pth \+ latest_net_G\.pth pair; found only latest_net_D\.pth"),
    ],
)
def test_fetch_release_failures_are_one_line_with_exit_code_2(server, cache, tmp_path, capsys, where, message):
    url = _closed_port_url() if where == "closed port" else f"{server.url}{where}"
    assert main(["fetch-release", "--url", url, "--output", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("cocosnet fetch-release: error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_fetch_release_never_overwrites_a_folder_it_did_not_write(server, cache, tmp_path):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "notes.txt").write_text("my own files")
    with pytest.raises(ReleaseError, match="exists and was not written by this command"):
        fetch_release(url=f"{server.url}/release.zip", output=output, progress=False)
    assert (output / "notes.txt").read_text() == "my own files"


def test_push_uploads_every_variant_but_not_the_cache_stamp(release_zip, cache, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    uploaded = {}

    class Repo:
        repo_id = "someone/cocosnet-deepfashionhd"

    monkeypatch.setattr(huggingface_hub, "create_repo", lambda repo_id, **kw: Repo())

    def upload_folder(repo_id, folder_path, ignore_patterns, **kw):
        uploaded["files"] = sorted(
            p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*")
            if p.is_file() and not any(p.match(pattern) for pattern in ignore_patterns)
        )  # fmt: skip

    monkeypatch.setattr(huggingface_hub, "upload_folder", upload_folder)
    archive = tmp_path / "release.zip"
    archive.write_bytes(release_zip)
    args = ["fetch-release", "--archive", str(archive), "--output", str(tmp_path / "out"), "--variant", "fp16"]
    assert main([*args, "--push", "someone/cocosnet-deepfashionhd", "--quiet"]) == 0
    assert "pushed to someone/cocosnet-deepfashionhd" in capsys.readouterr().out
    assert uploaded["files"] == [
        "README.md", "cocosnet_pipeline.py", "correspondence/config.json", "correspondence/diffusion_pytorch_model.fp16.safetensors",
        "correspondence/diffusion_pytorch_model.safetensors", "model_index.json", "translator/config.json",
        "translator/diffusion_pytorch_model.fp16.safetensors", "translator/diffusion_pytorch_model.safetensors",
    ]  # fmt: skip


# ---------------------------------------------------------------- the app's weights values


def test_app_release_weights_fetch_once_and_report_failures(server, cache, monkeypatch):
    from pipeline_cocosnet.app import PipelineStore, WeightsConfig
    from pipeline_cocosnet.app.weights import WeightsUnavailable

    config = WeightsConfig.resolve({"pose-to-body": "release:deepfashionhd"}, environ={})
    assert "downloaded and converted on the first translation" in config.describe("pose-to-body")
    monkeypatch.setenv("COCOSNET_RELEASE_URL_DEEPFASHIONHD", _closed_port_url())
    store = PipelineStore(config)
    with pytest.raises(WeightsUnavailable, match=r"cannot fetch `release:deepfashionhd`.*Connection refused.*by hand"):
        store.get("pose-to-body")
    monkeypatch.setenv("COCOSNET_RELEASE_URL_DEEPFASHIONHD", f"{server.url}/release.zip")  # the network is back
    pipe = store.get("pose-to-body")  # the failure was not remembered
    assert pipe.config.task == "pose-to-body" and pipe.config.license == "mit"
    assert store.get("pose-to-body") is pipe
    wrong_tab = PipelineStore(WeightsConfig.resolve({"edge-to-face": "release:deepfashionhd"}, environ={}))
    with pytest.raises(WeightsUnavailable, match="this tab needs a pipeline folder with task edge-to-face"):
        wrong_tab.get("edge-to-face")


def test_app_converts_a_research_checkpoint_folder_once(cache, tmp_path):
    from pipeline_cocosnet.app import PipelineStore, WeightsConfig

    folder = write_release_checkpoints(tmp_path / "checkpoints" / "deepfashionHD")
    config = WeightsConfig.resolve({"pose-to-body": str(folder)}, environ={})
    pipe = PipelineStore(config).get("pose-to-body")
    assert pipe.config.task == "pose-to-body"
    (converted,) = (cache / "converted").iterdir()
    assert_published_weights(converted)
    stamp = (converted / "model_index.json").stat().st_mtime_ns
    PipelineStore(config).get("pose-to-body")  # a new app process: the cached folder, no conversion
    assert [p for p in (cache / "converted").iterdir()] == [converted]
    assert (converted / "model_index.json").stat().st_mtime_ns == stamp
    retrained = (folder / "latest_net_G.pth").stat().st_mtime_ns + 10**9
    os.utime(folder / "latest_net_G.pth", ns=(retrained, retrained))  # a retrained checkpoint is converted again
    PipelineStore(config).get("pose-to-body")
    assert len(list((cache / "converted").iterdir())) == 2


@pytest.mark.slow  # one 512×512 translation (the release's size) through the served app
def test_app_translates_the_pose_example_with_release_weights(server, cache, monkeypatch):
    pytest.importorskip("gradio")
    from gradio_client import Client, handle_file

    from pipeline_cocosnet.app import PipelineStore, WeightsConfig, build_demo

    from .test_app import EXAMPLES, _free_port, _size

    monkeypatch.setenv("COCOSNET_RELEASE_URL_DEEPFASHIONHD", f"{server.url}/release.zip")
    store = PipelineStore(WeightsConfig.resolve({"pose-to-body": "release:deepfashionhd"}, environ={}), device="cpu")
    demo = build_demo(store=store, examples_dir=EXAMPLES)
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(server_port=_free_port(), prevent_thread_lock=True, quiet=True, allowed_paths=[str(EXAMPLES)])
    try:
        pose = EXAMPLES / "pose-to-body"
        result, warps, *_ = Client(url, verbose=False, download_files=True).predict(
            pose_file=[handle_file(str(pose / "standing.json"))], exemplar=handle_file(str(pose / "mannequin_waving.png")),
            exemplar_pose_file=[handle_file(str(pose / "waving.json"))], api_name="/pose_to_body",
        )  # fmt: skip
    finally:
        demo.close()
    assert _size(result) == (512, 512)
    assert [_size(w["image"]) for w in warps] == [(64, 64), (128, 128), (256, 256), (512, 512)]
    assert (cache / "pipelines" / "deepfashionhd" / "model_index.json").is_file()


def test_the_pose_tab_without_weights_downloads_the_release_with_one_click(server, cache, monkeypatch):
    pytest.importorskip("gradio")
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from pipeline_cocosnet.app import PipelineStore, WeightsConfig, build_demo

    from .test_app import EXAMPLES, _free_port, _size

    store = PipelineStore(WeightsConfig.resolve({}, environ={}, demo_default=False), device="cpu")
    assert "no weights configured" in store.missing("pose-to-body")
    demo = build_demo(store=store, examples_dir=EXAMPLES)
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(server_port=_free_port(), prevent_thread_lock=True, quiet=True, allowed_paths=[str(EXAMPLES)])
    try:
        client = Client(url, verbose=False, download_files=True)
        monkeypatch.setenv("COCOSNET_RELEASE_URL_DEEPFASHIONHD", _closed_port_url())  # offline
        with pytest.raises(AppError, match="cannot download .*To provide it by hand.*--archive FILE.zip") as failure:
            client.predict(api_name="/fetch_pose_to_body_weights")
        assert "\n" not in str(failure.value).strip() and store.missing("pose-to-body") is not None  # still the manual route
        monkeypatch.setenv("COCOSNET_RELEASE_URL_DEEPFASHIONHD", f"{server.url}/release.zip")  # online
        client.predict(api_name="/fetch_pose_to_body_weights")
        assert store.missing("pose-to-body") is None and store.config.sources["pose-to-body"] == "release:deepfashionhd"
        pose = EXAMPLES / "pose-to-body"
        result = client.predict(
            pose_file=[handle_file(str(pose / "standing.json"))], exemplar=handle_file(str(pose / "mannequin_waving.png")),
            exemplar_pose_file=[handle_file(str(pose / "waving.json"))], api_name="/pose_to_body",
        )[4]  # fmt: skip
    finally:
        demo.close()
    assert _size(result) == (512, 512)


def test_from_pretrained_points_releases_and_checkpoint_folders_to_load_pipeline(cache, tmp_path):
    import pipeline_cocosnet
    from pipeline_cocosnet import CoCosNetPipeline

    folder = write_release_checkpoints(tmp_path / "checkpoints" / "deepfashionHD")
    for source, what in (("release:deepfashionhd", "a published release"), (str(folder), "the research code's checkpoint folder")):
        with pytest.raises(FileNotFoundError) as caught:
            CoCosNetPipeline.from_pretrained(source)
        message = str(caught.value)
        assert "\n" not in message and what in message and f"pipeline_cocosnet.load_pipeline({source!r})" in message
    pipe = pipeline_cocosnet.load_pipeline(folder)  # the one resolver: converted once into the cache
    assert pipe.config.task == "pose-to-body"
    (converted,) = (cache / "converted").iterdir()
    assert_published_weights(converted)
