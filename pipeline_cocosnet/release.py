"""The published CoCosNet v2 release, from nothing to a pipeline folder: download, find, convert, cache.

Only one CoCosNet v2 checkpoint was ever published: DeepFashionHD pose-to-body (512×512,
MIT licence), as a Google Drive download of the research code's checkpoint folder.
:func:`fetch_release` downloads it (Google Drive links through the optional ``gdown``
package, plain HTTP(S) with resume), checks the size and the zip, finds
``*_net_Corr.pth`` and ``*_net_G.pth`` wherever they are in the archive, converts them with
the release reader (:mod:`pipeline_cocosnet.convert`) and writes a pipeline folder with our
model card. :func:`convert_once` is the one "convert once, cache on disk" mechanism, shared
with research-code checkpoint folders given to the app (:func:`converted_checkpoint_folder`).

Cache: ``$COCOSNET_CACHE``, else huggingface_hub's assets cache
(``$HF_ASSETS_CACHE/pipeline_cocosnet/release/cache``, by default under ``$HF_HOME``, so on a
Space with persistent storage it lives there); a cache left by older versions in
``$HF_HOME/cocosnet`` is moved there on first use. ``COCOSNET_RELEASE_URL_<NAME>`` (e.g.
``COCOSNET_RELEASE_URL_DEEPFASHIONHD``) replaces a release's download URL, e.g. with a mirror.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .convert import CheckpointError, convert_checkpoints, find_checkpoint_pair, pick_checkpoint_pair
from .hub import CACHE_STAMP, is_checkpoint_folder
from .tasks import RESEARCH_TASK

__all__ = [
    "Release",
    "RELEASES",
    "ReleaseError",
    "cache_root",
    "release_url",
    "download",
    "fetch_release",
    "convert_once",
    "converted_checkpoint_folder",
    "is_checkpoint_folder",
    "manual_steps",
]


@dataclass(frozen=True)
class Release:
    """A published checkpoint: where it is and what pipeline it makes."""

    name: str
    #: the download link the research code's README gives
    url: str
    task: str
    resolution: tuple[int, int]
    license: str
    description: str
    #: what the weights were trained on (the model card's ``training_data``)
    dataset: str
    #: how the app's download button names it
    title: str


RELEASES: dict[str, Release] = {
    "deepfashionhd": Release(
        name="deepfashionhd",
        url="https://drive.google.com/file/d/1ehkrKlf5s1gfpDNXO6AC9SIZMtqs5L3N/view?usp=sharing",
        task=RESEARCH_TASK,
        resolution=(512, 512),
        license="mit",
        description=f"DeepFashionHD {RESEARCH_TASK}, 512×512: the only published CoCosNet v2 checkpoint",
        dataset="DeepFashionHD (DeepFashion In-shop Clothes at high resolution, as prepared by the CoCosNet v2 authors)",
        title="DeepFashionHD",
    )
}

#: marks a folder written by :func:`convert_once` and records what it was converted from
STAMP = CACHE_STAMP


class ReleaseError(ValueError):
    """Fetching or converting a release failed; the message says what failed (and how to do it by hand)."""


def cache_root() -> Path:
    """Where downloads and converted pipelines are kept: ``$COCOSNET_CACHE``, else huggingface_hub's assets cache.

    The assets folder is ``cached_assets_path("pipeline_cocosnet", "release", "cache")``. What an
    older version kept in ``$HF_HOME/cocosnet`` is moved into it (once, entry by entry).
    """
    if os.environ.get("COCOSNET_CACHE"):
        return Path(os.environ["COCOSNET_CACHE"]).expanduser()
    from huggingface_hub import cached_assets_path, constants

    # assets_dir read now: cached_assets_path's own default is the value at its module's first import
    root = cached_assets_path(library_name="pipeline_cocosnet", namespace="release", subfolder="cache", assets_dir=constants.HF_ASSETS_CACHE)
    _migrate_legacy_cache(Path(constants.HF_HOME).expanduser() / "cocosnet", root)
    return root


def _migrate_legacy_cache(legacy: Path, root: Path) -> None:
    """Move the entries of the pre-assets cache folder ``legacy`` into ``root`` (never over an existing entry)."""
    if not legacy.is_dir():
        return
    import logging

    moved = 0
    for entry in legacy.iterdir():
        target = root / entry.name
        if target.exists():
            continue
        with contextlib.suppress(FileNotFoundError):  # another process moved it first
            shutil.move(str(entry), str(target))
            moved += 1
    with contextlib.suppress(OSError):  # left in place when something could not move
        legacy.rmdir()
    if moved:
        logging.getLogger(__name__).info("moved %d entries of the release cache from %s to %s", moved, legacy, root)


def get_release(name: str) -> Release:
    """The release called ``name`` (case-insensitive); unknown names raise :class:`ReleaseError` listing the known ones."""
    try:
        return RELEASES[name.strip().lower()]
    except KeyError:
        raise ReleaseError(f"unknown release {name!r}; published releases: {', '.join(RELEASES)}") from None


def release_url(release: Release) -> str:
    """The release's download URL: ``$COCOSNET_RELEASE_URL_<NAME>`` when set, else the published link."""
    return os.environ.get(f"COCOSNET_RELEASE_URL_{release.name.upper()}") or release.url


def manual_steps(release: Release) -> str:
    """How to provide the release by hand (one sentence, for error messages)."""
    return (
        f"To provide it by hand: download {release.url} in a browser, then run `cocosnet fetch-release {release.name} "
        f"--archive FILE.zip` (or unzip it and run `cocosnet convert --checkpoint-dir FOLDER`, or start the app with "
        f"`--weights {release.task}=FOLDER`)"
    )


# --------------------------------------------------------------------------- download


def _is_google_drive(url: str) -> bool:
    return urllib.parse.urlsplit(url).hostname in {"drive.google.com", "docs.google.com", "drive.usercontent.google.com"}


def download(url: str, destination: str | os.PathLike, *, progress: bool = True, attempts: int = 5, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``destination``, resuming after cut connections; returns ``destination``.

    Google Drive links go through ``gdown`` (``pip install "pipeline_cocosnet[release]"``);
    other ``http(s)://`` URLs are fetched here: into ``destination + ".part"``, resumed with a
    ``Range`` request (``If-Range`` guarding against a changed file) after a cut connection
    (up to ``attempts`` tries in this call; a later call resumes the ``.part`` too), checked
    against ``Content-Length``, then renamed. ``progress`` shows a tqdm bar (the app shows it
    in the tab; ``HF_HUB_DISABLE_PROGRESS_BARS=1`` hides it, as it hides the Hub's own). Failures raise :class:`ReleaseError` with a one-line message.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if _is_google_drive(url):
        return _download_google_drive(url, destination, progress=progress, attempts=attempts)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ReleaseError(f"cannot download {url!r}: expected an http(s):// URL or a Google Drive link (a local file: --archive)")
    part = destination.with_name(destination.name + ".part")
    validator_file = destination.with_name(destination.name + ".part.validator")
    failure = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(min(2.0**attempt * 0.1, 5.0))
        start = part.stat().st_size if part.is_file() else 0
        validator = validator_file.read_text() if start and validator_file.is_file() else ""
        headers = {"User-Agent": "pipeline_cocosnet", "Accept-Encoding": "identity"}
        if start:
            headers["Range"] = f"bytes={start}-"
            if validator:
                headers["If-Range"] = validator
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
                resumed = start > 0 and response.status == 206
                if not resumed:
                    start = 0  # a full answer (no resume support, or the file changed): start over
                length = response.headers.get("Content-Length")
                total = start + int(length) if length is not None else None
                validator_file.write_text(response.headers.get("ETag") or response.headers.get("Last-Modified") or "")
                _copy_with_progress(response, part, "ab" if resumed else "wb", start, total, progress, destination.name)
            size = part.stat().st_size
            if total is not None and size != total:
                failure = f"the connection closed after {size} of {total} bytes"
                continue
            part.replace(destination)
            validator_file.unlink(missing_ok=True)
            return destination
        except urllib.error.HTTPError as error:
            if error.code == 416 and start:  # the .part is not a prefix of this file any more
                part.unlink(missing_ok=True)
                failure = "the server refused to resume"
                continue
            raise ReleaseError(f"cannot download {url}: HTTP {error.code} {error.reason}") from None
        except urllib.error.URLError as error:  # before any byte: no network, unknown host, refused
            raise ReleaseError(f"cannot download {url}: {_reason(error.reason)} (no network connection?)") from None
        except (http.client.HTTPException, ConnectionError, TimeoutError) as error:  # cut during the transfer
            failure = f"{type(error).__name__} after {part.stat().st_size if part.is_file() else 0} bytes"
    raise ReleaseError(
        f"cannot download {url}: {failure}, {attempts} attempts; run the command again to resume from the {part.name} kept"
    )


def _reason(reason: Any) -> str:
    return " ".join(str(getattr(reason, "strerror", None) or reason).split())


def _copy_with_progress(response, part: Path, mode: str, start: int, total: int | None, progress: bool, name: str) -> None:
    from huggingface_hub.utils import tqdm  # honours HF_HUB_DISABLE_PROGRESS_BARS, like the Hub's own downloads

    with part.open(mode) as file, tqdm(
        total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=f"downloading {name}",
        disable=not progress,
    ) as bar:  # fmt: skip
        while chunk := response.read(1 << 20):
            file.write(chunk)
            bar.update(len(chunk))


def _download_google_drive(url: str, destination: Path, *, progress: bool, attempts: int) -> Path:
    """A Google Drive file through gdown (it handles the confirmation page), resumed across attempts."""
    from huggingface_hub.utils import are_progress_bars_disabled

    try:
        import gdown
    except ImportError:
        raise ReleaseError(
            f"downloading {url} (Google Drive) needs gdown: pip install \"pipeline_cocosnet[release]\", or use a plain "
            f"http(s) mirror (fetch-release --url, or COCOSNET_RELEASE_URL_<NAME>)"
        ) from None
    failure: Exception | None = None
    for _ in range(attempts):
        try:
            quiet = not progress or are_progress_bars_disabled()
            result = gdown.download(url=url, output=str(destination), quiet=quiet, resume=True)
        except Exception as error:  # noqa: BLE001 - gdown raises its own, requests' and OS errors
            failure = error
            continue
        if result and destination.is_file():
            return destination
        failure = RuntimeError("gdown returned without a file")
    text = " ".join(str(failure).split())[:300]
    raise ReleaseError(f"cannot download {url} from Google Drive: {type(failure).__name__}: {text}")


# --------------------------------------------------------------------------- archive


def _open_zip(path: Path, url: str) -> zipfile.ZipFile:
    """The downloaded file as a zip; anything else is deleted (so the next call downloads again) and reported."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        with path.open("rb") as file:
            head = file.read(256).lstrip().lower()
        size = path.stat().st_size
        kind = "an HTML page" if head.startswith((b"<!doctype html", b"<html")) else "not a zip archive"
        path.unlink(missing_ok=True)
        hint = (
            " (Google Drive answers with a page when the download quota is exceeded: download it in a browser and "
            "pass the file with --archive)" if kind == "an HTML page" else ""
        )
        raise ReleaseError(f"the download from {url} is {kind} ({size} bytes){hint}; it was deleted") from None


def extract_checkpoint_pair(archive: str | os.PathLike, into: str | os.PathLike, url: str = "") -> tuple[Path, Path]:
    """Find ``*_net_Corr.pth`` and ``*_net_G.pth`` anywhere in a zip and copy them into ``into``.

    The research code's layout is expected somewhere inside (``…/latest_net_Corr.pth``,
    ``latest_net_G.pth``; ``latest_net_D.pth`` is ignored). The copies are CRC-checked.
    Raises :class:`ReleaseError` naming the archive when it is not a zip, lacks the files or
    is corrupt.
    """
    archive, into = Path(archive), Path(into)
    with _open_zip(archive, url or str(archive)) as zipped:
        names = [info.filename for info in zipped.infolist() if not info.is_dir()]
        try:
            corr_name, g_name = pick_checkpoint_pair(names, where=f"the archive {archive.name}")
        except CheckpointError as error:
            shown = ", ".join(names[:8]) + (f", … ({len(names)} files)" if len(names) > 8 else "")
            raise ReleaseError(f"{error} (it holds: {shown or 'nothing'})") from None
        paths = []
        for name, target in ((corr_name, into / PurePosixPath(corr_name).name), (g_name, into / PurePosixPath(g_name).name)):
            try:
                with zipped.open(name) as source, target.open("wb") as copy:
                    shutil.copyfileobj(source, copy, 1 << 20)
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise ReleaseError(f"the archive {archive} is corrupt ({name}: {error}); delete it and fetch again") from None
            paths.append(target)
    return paths[0], paths[1]


# --------------------------------------------------------------------------- convert once


def _read_stamp(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return None


def _is_converted(folder: Path, source: Mapping[str, Any]) -> bool:
    return (folder / "model_index.json").is_file() and _read_stamp(folder) == dict(source)


@contextlib.contextmanager
def _cache_lock(output: Path) -> Iterator[None]:
    """A file lock per output folder (kept in the cache), so two processes never convert into one folder."""
    from filelock import FileLock

    locks = cache_root() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with FileLock(str(locks / (hashlib.sha1(str(output.resolve()).encode()).hexdigest()[:16] + ".lock"))):
        yield


def _convert_into(corr: Path, translator: Path, output: Path, source: Mapping[str, Any], **convert_kwargs: Any) -> None:
    """Convert into a temporary sibling, stamp it, then move it to ``output`` (never half-written)."""
    if output.exists() and _read_stamp(output) is None and (not output.is_dir() or any(output.iterdir())):
        raise ReleaseError(f"{output} exists and was not written by this command; choose another output folder")
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        convert_checkpoints(corr, translator, staging, **convert_kwargs)
        (staging / STAMP).write_text(json.dumps(dict(source), indent=1))
        if output.exists():
            shutil.rmtree(output)  # an earlier conversion (stamped) or an empty folder
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def convert_once(corr: str | os.PathLike, translator: str | os.PathLike, output: str | os.PathLike, *, source: Mapping[str, Any], **convert_kwargs: Any) -> Path:
    """Convert a checkpoint pair into the pipeline folder ``output`` unless it already holds that conversion.

    ``source`` (JSON-serialisable) identifies what is converted; it is stored in the folder
    (``.cocosnet-source.json``) and a later call with the same ``source`` returns at once.
    Other keyword arguments go to :func:`~pipeline_cocosnet.convert.convert_checkpoints`.
    """
    output = Path(output)
    if _is_converted(output, source):
        return output
    with _cache_lock(output):
        if not _is_converted(output, source):  # another process may have finished meanwhile
            _convert_into(Path(corr), Path(translator), output, source, **convert_kwargs)
    return output


def _file_identity(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def converted_checkpoint_folder(folder: str | os.PathLike, epoch: str = "latest", *, release: str = "deepfashionhd") -> Path:
    """A research-code checkpoint folder (e.g. ``checkpoints/deepfashionHD``) as a cached pipeline folder.

    Converted once into ``cache_root()/converted/<folder name>-<hash>`` (the hash covers
    the two files' paths, sizes and modification times, so a retrained checkpoint is
    converted again), with ``release``'s task, resolution and licence; later calls return the
    cached folder at once.
    """
    corr, translator = find_checkpoint_pair(folder, epoch)
    spec = get_release(release)
    source = {"corr": _file_identity(corr), "translator": _file_identity(translator), "task": spec.task}
    key = hashlib.sha1(json.dumps(source, sort_keys=True).encode()).hexdigest()[:12]
    output = cache_root() / "converted" / f"{Path(folder).resolve().name}-{key}"
    origin = (
        f"converted from the research code's checkpoint folder {Path(folder).resolve().name} "
        f"({corr.name}, {translator.name}; spectral norm folded, keys renamed)"
    )
    return convert_once(corr, translator, output, source=source, task=spec.task, resolution=spec.resolution, origin=origin)


# --------------------------------------------------------------------------- fetch


def fetch_release(
    name: str = "deepfashionhd",
    *,
    url: str | None = None,
    output: str | os.PathLike | None = None,
    archive: str | os.PathLike | None = None,
    variant: str | None = None,
    progress: bool = True,
) -> Path:
    """Download, check, find, convert and cache a published release; returns the pipeline folder.

    Args:
        name: the release (:data:`RELEASES`; the only one is ``"deepfashionhd"``).
        url: download from here instead (a mirror; ``http(s)://`` or a Google Drive link);
            default :func:`release_url`.
        output: the pipeline folder to write (default ``cache_root()/pipelines/<name>``).
        archive: use this already downloaded zip instead of downloading.
        variant: also write ``"fp16"``/``"bf16"`` weights (diffusers variant naming).
        progress: show download progress bars.

    The folder gets our model card (origin: converted from the published release, with the
    source URL; licence from the release) and a stamp; a second call with the same source
    returns at once without touching the network. The downloaded zip stays in
    ``cache_root()/downloads`` (a partial download is resumed by the next call).
    """
    release = get_release(name)
    url = url or release_url(release)
    output = Path(output) if output is not None else cache_root() / "pipelines" / release.name
    if archive is not None:
        archive = Path(archive)
        if not archive.is_file():
            raise ReleaseError(f"archive not found: {archive}")
        source = {"release": release.name, "archive": _file_identity(archive), "variant": variant}
        origin_from = f"the archive {archive.name} (downloaded by hand from {release.url})"
    else:
        source = {"release": release.name, "url": url, "variant": variant}
        origin_from = url
    if _is_converted(output, source):
        return output
    with _cache_lock(output):
        if _is_converted(output, source):
            return output
        downloaded = archive is None
        if downloaded:
            downloads = cache_root() / "downloads"
            archive = downloads / f"{release.name}-{hashlib.sha1(url.encode()).hexdigest()[:12]}.zip"
            if not archive.is_file():
                try:
                    download(url, archive, progress=progress)
                except ReleaseError as error:
                    raise ReleaseError(f"{error}. {manual_steps(release)}") from None
        origin = (
            f"converted from the published CoCosNet v2 release ({release.description}; licence: "
            f"{release.license.upper()}) with `cocosnet fetch-release {release.name}`, from {origin_from} "
            f"(spectral norm folded, keys renamed)"
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{output.name}.extract.", dir=output.parent) as work:
            try:
                corr, translator = extract_checkpoint_pair(archive, work, url)
            except ReleaseError:
                if downloaded:  # an unusable download is not kept as the cache
                    archive.unlink(missing_ok=True)
                raise
            _convert_into(
                corr, translator, output, source, task=release.task, resolution=release.resolution,
                license=release.license, origin=origin, variant=variant, dataset=release.dataset,
            )  # fmt: skip
    return output
