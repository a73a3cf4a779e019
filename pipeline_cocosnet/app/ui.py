"""The CoCosNet v2 demo as Gradio Blocks: four tabs, each a structure + an exemplar → an image.

Every tab shows the structure as the model reads it, the result and the exemplar warped
by the learned correspondence (per level, coarse to fine). Translate events are named API
endpoints (``/mask_to_image``, ``/edge_to_face``, ``/pose_to_body``, ``/oil_portrait``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import queue
import re
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from ..pipeline import CoCosNetPipeline
from ..processing.backends.face import FaceAlignmentWarning
from ..processing.encoders.edges import PhotoEdges
from ..processing.errors import StructureError
from ..processing.formats.ade20k import ADE20K_CLASSES, ADE20K_PALETTE
from ..processing.images import ImageError
from .examples import TabExamples, default_examples_dir, load_examples
from .inputs import check_upload_size, editor_structure, index_mask_preview, read_image, upload_paths
from .weights import MODEL_TASK, TASKS, PipelineStore, WeightsConfig, WeightsUnavailable

__all__ = ["build_demo", "API_NAMES", "BRUSH_CLASSES", "DISPLAY_SIDE"]

_log = logging.getLogger(__name__)

#: results smaller than this (longest side, pixels) are enlarged (nearest neighbour, whole factors) for display;
#: the download keeps the true resolution
DISPLAY_SIDE = 512

#: tab → API endpoint name (``/mask_to_image`` …)
API_NAMES = {task: task.replace("-", "_") for task in TASKS}

TITLES = {
    "mask-to-image": "Mask → image",
    "edge-to-face": "Edges → face",
    "pose-to-body": "Pose → body",
    "oil-portrait": "Oil portrait",
}

DESCRIPTIONS = {
    "mask-to-image": (
        "Upload an ADE20k segmentation mask (index PNG, values 0–150, or a palette PNG) — or draw one with the "
        "class colours below, or upload a photo to segment when a segmentation backend is installed — and an "
        "exemplar photo with its mask. The result has the mask's layout and the exemplar's appearance."
    ),
    "edge-to-face": (
        "Upload an edge map (white lines on black, or black on white) or a face photo (its edges are extracted), "
        "and an exemplar portrait (its edges are extracted automatically)."
    ),
    "pose-to-body": (
        "Upload the pose as an OpenPose JSON file (18 or 25 keypoints on the 1024×1024 canvas) or a DeepFashionHD "
        "NAME_candidate.txt + NAME_subset.txt pair — or a photo of a person when a pose backend is installed — and "
        "an exemplar photo with its keypoints (extracted from the photo when omitted and a backend is installed)."
    ),
    "oil-portrait": (
        "Upload a photo of a person: the face is found and aligned (dlib), its edges extracted, and the edge-to-face "
        "model paints it in the style of the portrait exemplar — pick one from the gallery or upload your own."
    ),
}

#: the classes offered as brush colours in the mask editor (ADE20k ids)
BRUSH_CLASSES = (3, 17, 69, 22, 27, 61, 10, 30, 5, 18, 67, 47, 35, 14, 2, 26, 7, 12, 1, 4, 13, 21)


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _legend_html() -> str:
    items = "".join(
        f'<span style="display:inline-block;margin:2px 8px 2px 0;white-space:nowrap">'
        f'<span style="display:inline-block;width:14px;height:14px;vertical-align:middle;border:1px solid #888;'
        f'background:{_hex(ADE20K_PALETTE[c - 1])}"></span> {c} {ADE20K_CLASSES[c - 1]}</span>'
        for c in BRUSH_CLASSES
    )
    return f'<div style="font-size:0.85em">Brush classes: {items} <span style="white-space:nowrap">(black: 0 unknown)</span></div>'


def _gpu(fn: Callable) -> Callable:
    """``spaces.GPU`` (ZeroGPU) when the ``spaces`` package is importable, else ``fn`` unchanged."""
    try:
        import spaces
    except ImportError:
        return fn
    gpu = getattr(spaces, "GPU", None)  # None: e.g. this repository's spaces/ folder imported as a namespace package
    return gpu(fn) if callable(gpu) else fn


def _user_error(error: gr.Error, task: str) -> gr.Error:
    """Log a user's mistake as one line (no traceback; those are for unexpected exceptions) and return it.

    Markdown code spans become quotes: the popup shows plain text, where backticks would show as they are.
    """
    error.message = re.sub(r"`([^`]+)`", r"‘\1’", str(error.message))
    error.print_exception = False
    _log.warning("%s: user error: %s", task, " ".join(str(error.message).split()))
    return error


@contextlib.contextmanager
def _user_errors(task: str) -> Iterator[None]:
    """Input problems → ``gr.Error`` naming them, logged in one line; face-alignment fallbacks → ``gr.Warning``.

    Anything else propagates: Gradio logs its traceback and shows a generic error.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FaceAlignmentWarning)
        try:
            yield
        except gr.Error as error:
            raise _user_error(error, task) from None
        except WeightsUnavailable as error:
            raise _user_error(gr.Error(str(error), title="Weights missing", duration=None), task) from None
        except (StructureError, ImageError, OSError, ImportError, ValueError) as error:
            raise _user_error(gr.Error(f"{task}: {error}"), task) from None
        finally:
            for warning in caught:
                if issubclass(warning.category, FaceAlignmentWarning):
                    gr.Warning(str(warning.message))


class _Tab:
    """What the handlers of one tab need: its task, pipelines, examples and the components they fill."""

    def __init__(self, task: str, store: PipelineStore, examples: TabExamples):
        self.task = task
        self.store = store
        self.examples = examples
        self._views: dict[Any, CoCosNetPipeline] = {}
        self._lock = threading.Lock()

    def pipe(self, align_faces: bool = False) -> CoCosNetPipeline:
        """The tab's pipeline; with ``align_faces``, the same components (shared, diffusers' ``from_pipe``)
        with the tab encoder's options plus face alignment. Kept per pipeline, so concurrent requests with
        and without alignment never change each other's encoder."""
        pipe = self.store.get(self.task)
        if not align_faces:
            return pipe
        with self._lock:
            key = id(pipe)
            if key not in self._views:
                options = {**pipe.structure_encoder.get_config(), "align_faces": True}
                self._views[key] = CoCosNetPipeline.from_pipe(pipe, structure_encoder=options)
            return self._views[key]


def _release_for(task: str):
    """The published release whose model serves ``task``'s tab, if there is one (pose-to-body: DeepFashionHD)."""
    from ..release import RELEASES

    return next((r for r in RELEASES.values() if r.task == MODEL_TASK[task]), None)


def _size(pipe: CoCosNetPipeline) -> tuple[int, int]:
    return tuple(int(v) for v in pipe.config.resolution)


def _view(pipe: CoCosNetPipeline, structure: Any) -> tuple[Any, Image.Image]:
    """``(structure to pass on, its picture at the model size)``; lazily extracted edges are computed once here."""
    picture = pipe.structure_encoder.render(structure, _size(pipe))
    if isinstance(structure, PhotoEdges):
        structure = np.asarray(picture)
    return structure, picture


def _extract(pipe: CoCosNetPipeline, photo: Image.Image, what: str) -> Any:
    try:
        return pipe.structure_encoder.extract(photo)
    except (StructureError, ImportError, OSError) as error:  # OSError: a backend's model cannot be loaded
        raise gr.Error(f"{pipe.config.task}: cannot extract the structure of the {what} photo: {error}") from None


def _keypoints_upload(payload: Any, what: str) -> Any:
    """One OpenPose JSON path, a (candidate, subset) pair, or ``None`` when nothing was uploaded."""
    files = upload_paths(payload)
    if not files:
        return None
    names = [name.lower() for _, name in files]
    if len(files) == 1 and names[0].endswith(".json"):
        return files[0][0]
    if len(files) == 2:
        candidate = [p for (p, _), n in zip(files, names) if n.endswith("candidate.txt")]
        subset = [p for (p, _), n in zip(files, names) if n.endswith("subset.txt")]
        if len(candidate) == 1 and len(subset) == 1:
            return candidate[0], subset[0]
    raise gr.Error(
        f"pose-to-body: {what}: upload one OpenPose .json file, or a NAME_candidate.txt and NAME_subset.txt pair "
        f"(DeepFashionHD); got {', '.join(n for _, n in files)}"
    )


def display_copy(image: Image.Image, side: int = DISPLAY_SIDE) -> Image.Image:
    """``image`` enlarged by a whole factor (nearest neighbour: every pixel stays as computed) until its longest
    side reaches ``side``; images that large already are returned unchanged."""
    factor = math.ceil(side / max(image.size))
    return image if factor <= 1 else image.resize((image.width * factor, image.height * factor), Image.NEAREST)


class _RequestFiles:
    """One request's output images as PNG files, each written once (to a folder removed when the request ends).

    Gradio re-writes a PIL image's cached copy every time an update carries it, so a streamed update that
    repeats an earlier image (the structure views, the warps so far) could truncate the file while the page
    still fetches it from the previous update ("Too little data for declared Content-Length"). A file path is
    copied into Gradio's cache once, atomically, and reused by content."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._saved: dict[int, tuple[Image.Image, str]] = {}  # id → (the image, kept alive so ids stay unique; path)

    def save(self, image: Image.Image | None, name: str) -> str | None:
        if image is None:
            return None
        if id(image) not in self._saved:
            path = self.folder / f"{name}.png"
            image.save(path, format="PNG")
            self._saved[id(image)] = image, str(path)
        return self._saved[id(image)][1]


def _warp_caption(warp: Image.Image) -> str:
    return f"warped exemplar {warp.width}×{warp.height}"


def _stream(steps: Iterator[Any], structure_view: Image.Image, exemplar_view: Image.Image | None) -> Iterator[tuple]:
    """The endpoints' outputs while the pipeline runs: the warps so far as each level finishes (no result
    yet), then all five outputs (:func:`_outputs`). Images go out as files written once (:class:`_RequestFiles`)."""
    with tempfile.TemporaryDirectory(prefix="cocosnet-request-") as folder:
        files = _RequestFiles(folder)
        views = files.save(structure_view, "structure"), files.save(exemplar_view, "exemplar-structure")
        warps: list[tuple[str, str]] = []
        for step in steps:
            if isinstance(step, Image.Image):
                warps.append((files.save(step, f"warp-{len(warps)}"), _warp_caption(step)))
                yield None, list(warps), *views, None
            else:
                yield _outputs(step, views, files)


def _outputs(output: Any, views: tuple[str | None, str | None], files: _RequestFiles) -> tuple:
    """The endpoints' five outputs: the result enlarged for display, the warps, the two structure views and
    the result at its true resolution as a PNG file (the download)."""
    result = output.images[0]
    warps = [(files.save(level[0], f"warp-final-{k}"), _warp_caption(level[0])) for k, level in enumerate(output.warps)]
    download = files.save(result, f"cocosnet-result-{result.width}x{result.height}")
    return files.save(display_copy(result), "result-display"), warps, *views, download


def build_demo(
    config: WeightsConfig | None = None,
    *,
    store: PipelineStore | None = None,
    examples_dir: str | Path | None = "auto",
    device: str = "auto",
    title: str = "CoCosNet v2: exemplar-based image translation",
) -> gr.Blocks:
    """Build the demo (without launching it).

    Args:
        config: which weights each tab uses (default: from the environment, with the demo default).
        store: a ready :class:`PipelineStore` (overrides ``config``/``device``).
        examples_dir: folder with ``<task>/examples.json`` manifests; ``"auto"``: the checkout's ``examples/``.
        device: where pipelines run (``"auto"``: CUDA when available).
    """
    store = store or PipelineStore(config or WeightsConfig.resolve(), device=device)
    config = store.config
    examples_dir = default_examples_dir() if examples_dir == "auto" else examples_dir
    tabs = {task: _Tab(task, store, load_examples(examples_dir, task)) for task in TASKS}
    suggest_available = hasattr(CoCosNetPipeline, "suggest_exemplars")

    @_gpu
    def generate(task: str, align_faces: bool, structure: Any, exemplar: Any, exemplar_structure: Any):
        """Run the tab's pipeline: yields each level's warp (a PIL image) as the level finishes
        (``callback_on_level_end``), then the pipeline's output.

        When this generator is closed before the end (Gradio closes it when the visitor presses Stop
        or leaves the page, once the level in progress has been sent), the call stops at its next
        PatchMatch iteration (:class:`~pipeline_cocosnet.PipelineInterrupted`), without running the translator.
        """
        pipe = tabs[task].pipe(align_faces)
        finished: queue.Queue = queue.Queue()
        result: dict[str, Any] = {}
        cancelled = threading.Event()

        def level_end(pipe: CoCosNetPipeline, level: int, warp: Any) -> None:
            finished.put(pipe.image_processor.postprocess(warp[:1], "pil")[0])

        def run() -> None:
            try:
                result["output"] = pipe(
                    structure, exemplar, exemplar_structure, return_warps=True, callback_on_level_end=level_end,
                    is_interrupted=cancelled.is_set,  # this request's own flag: the pipeline is shared between requests
                )  # fmt: skip
            except BaseException as error:  # noqa: BLE001 - raised again in the handler's thread below
                result["error"] = error
            finally:
                finished.put(None)

        # the call runs beside this generator, so warps reach the page while later levels compute;
        # its context (Gradio's progress tracking) goes with it
        worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True, name=f"cocosnet-translate-{task}")
        worker.start()
        try:
            while (warp := finished.get()) is not None:
                yield warp
        finally:
            cancelled.set()  # closed early: the worker stops at its next level's end; finished: nothing left to stop
        worker.join()
        if "error" in result:
            raise result["error"]
        yield result["output"]

    # ------------------------------------------------------------------ per-task structure reading

    def mask_structure(pipe, editor_payload):
        value = _decode(editor, editor_payload, "structure")
        structure, _ = editor_structure(value, pipe.structure_encoder.extract)
        return _view(pipe, structure)

    def mask_exemplar(pipe, exemplar_payload, exemplar_mask_payload):
        exemplar = read_image(exemplar_payload, "exemplar photo")
        mask = read_image(exemplar_mask_payload, "exemplar mask", required=False, photo=False)
        if mask is None:
            mask = _extract(pipe, exemplar, "exemplar")
        elif abs(mask.width / mask.height - exemplar.width / exemplar.height) > 0.02:
            raise gr.Error(
                f"mask-to-image: the exemplar mask is {mask.width}×{mask.height} but the exemplar photo "
                f"{exemplar.width}×{exemplar.height}; the mask must be the photo's segmentation (same shape)"
            )
        mask, view = _view(pipe, mask)
        return exemplar, mask, view

    def edge_structure(pipe, payload, what="structure"):
        image = read_image(payload, what, photo=False)
        return _view(pipe, image)

    def edge_exemplar(pipe, payload):
        exemplar = read_image(payload, "exemplar portrait")
        structure, view = _view(pipe, pipe.structure_encoder.extract(exemplar))
        return exemplar, structure, view

    def pose_structure(pipe, files_payload, photo_payload):
        keypoints = _keypoints_upload(files_payload, "pose file")
        if keypoints is None:
            photo = read_image(photo_payload, "pose", required=False)
            if photo is None:
                raise gr.Error("pose-to-body: upload the pose as an OpenPose JSON file (or candidate/subset pair) or a photo of a person")
            keypoints = _extract(pipe, photo, "pose")
        return _view(pipe, keypoints)

    def pose_exemplar(pipe, exemplar_payload, files_payload):
        exemplar = read_image(exemplar_payload, "exemplar photo")
        keypoints = _keypoints_upload(files_payload, "exemplar pose file")
        if keypoints is None:
            keypoints = _extract(pipe, exemplar, "exemplar")
        keypoints, view = _view(pipe, keypoints)
        return exemplar, keypoints, view

    # ------------------------------------------------------------------ handlers (API endpoints)

    def mask_to_image(structure, exemplar, exemplar_mask=None, progress=gr.Progress(track_tqdm=True)):
        """Mask-to-image: an image with the layout of an ADE20k segmentation mask and the appearance of an exemplar photo.

        Args:
            structure: the ImageEditor value whose background is the ADE20k mask (index PNG with values 0-150, or a palette PNG) or a photo to segment.
            exemplar: the exemplar photo whose colours and textures are used.
            exemplar_mask: the exemplar's ADE20k mask (same shape as the photo); extracted from the photo when omitted and a segmenter is installed.

        Returns:
            The result enlarged for display, the exemplar warped at each correspondence level, the structure and the exemplar structure as the model reads them, and the result at its true resolution (PNG).
        """
        with _user_errors("mask-to-image"):
            pipe = tabs["mask-to-image"].pipe()
            structure, structure_view = mask_structure(pipe, structure)
            exemplar, exemplar_mask, exemplar_view = mask_exemplar(pipe, exemplar, exemplar_mask)
            yield from _stream(generate("mask-to-image", False, structure, exemplar, exemplar_mask), structure_view, exemplar_view)

    def edge_to_face(structure, exemplar, align_faces=False, progress=gr.Progress(track_tqdm=True)):
        """Edge-to-face: a portrait with the lines of an edge map (or of a face photo's edges) and the appearance of an exemplar portrait.

        Args:
            structure: an edge map (white lines on black, or black on white) or a face photo whose edges are extracted.
            exemplar: the exemplar portrait; its edges are extracted automatically.
            align_faces: crop and align faces (dlib, FFHQ/MetFaces style) in photos and the exemplar first.

        Returns:
            The result enlarged for display, the exemplar warped at each correspondence level, the structure and the exemplar structure as the model reads them, and the result at its true resolution (PNG).
        """
        with _user_errors("edge-to-face"):
            pipe = tabs["edge-to-face"].pipe(bool(align_faces))
            structure, structure_view = edge_structure(pipe, structure)
            exemplar, exemplar_edges, exemplar_view = edge_exemplar(pipe, exemplar)
            yield from _stream(generate("edge-to-face", bool(align_faces), structure, exemplar, exemplar_edges), structure_view, exemplar_view)

    def pose_to_body(pose_file, exemplar, pose_photo=None, exemplar_pose_file=None, progress=gr.Progress(track_tqdm=True)):
        """Pose-to-body: a photo of the exemplar's person and clothes in another pose (DeepFashionHD).

        Args:
            pose_file: the target pose: one OpenPose .json file (18 or 25 keypoints on the 1024x1024 canvas) or a DeepFashionHD NAME_candidate.txt + NAME_subset.txt pair; may be empty when pose_photo is given.
            exemplar: the exemplar photo of a person.
            pose_photo: a photo of a person whose pose is extracted (needs a pose backend); used when pose_file is empty.
            exemplar_pose_file: the exemplar's keypoints (.json or candidate + subset); extracted from the exemplar photo when omitted.

        Returns:
            The result enlarged for display, the exemplar warped at each correspondence level, the pose and the exemplar pose as the model reads them, and the result at its true resolution (PNG).
        """
        with _user_errors("pose-to-body"):
            pipe = tabs["pose-to-body"].pipe()
            structure, structure_view = pose_structure(pipe, pose_file, pose_photo)
            exemplar, exemplar_pose, exemplar_view = pose_exemplar(pipe, exemplar, exemplar_pose_file)
            yield from _stream(generate("pose-to-body", False, structure, exemplar, exemplar_pose), structure_view, exemplar_view)

    def oil_portrait(photo, exemplar, progress=gr.Progress(track_tqdm=True)):
        """Oil portrait: a photo of a person painted in the style of a portrait: its face is aligned, its edges extracted and the edge-to-face model paints them.

        Args:
            photo: a photo of a person (one face).
            exemplar: the portrait whose style is used.

        Returns:
            The result enlarged for display, the exemplar warped at each correspondence level, the edges of the photo and of the portrait as the model reads them, and the result at its true resolution (PNG).
        """
        with _user_errors("oil-portrait"):
            pipe = tabs["oil-portrait"].pipe(align_faces=True)
            image = read_image(photo, "photo")
            structure, structure_view = _view(pipe, pipe.structure_encoder.extract(image))
            exemplar, exemplar_edges, exemplar_view = edge_exemplar(pipe, exemplar)
            yield from _stream(generate("oil-portrait", True, structure, exemplar, exemplar_edges), structure_view, exemplar_view)

    # ------------------------------------------------------------------ exemplar suggestions

    def suggest(task: str, structure: Any, pipe: CoCosNetPipeline) -> tuple[dict[str, Any], str]:
        gallery = tabs[task].examples.gallery
        exemplars = [g["exemplar"] for g in gallery]
        structures = [g.get("exemplar_structure") for g in gallery]
        ranking = pipe.suggest_exemplars(
            structure, exemplars, structures if all(s is not None for s in structures) else None, top_k=min(3, len(gallery))
        )
        lines = [
            f"{rank + 1}. {gallery[s.index].get('label') or Path(gallery[s.index]['exemplar']).stem}: score {s.score:.3f}"
            for rank, s in enumerate(ranking)
        ]
        return gallery[ranking[0].index], "Best matching gallery exemplars:\n\n" + "\n".join(lines)

    def suggest_mask(structure_payload):
        with _user_errors("mask-to-image"):
            pipe = tabs["mask-to-image"].pipe()
            structure, _ = mask_structure(pipe, structure_payload)
            best, text = suggest("mask-to-image", structure, pipe)
            return best["exemplar"], best.get("exemplar_structure"), text

    def suggest_edge(structure_payload, align_faces=False):
        with _user_errors("edge-to-face"):
            pipe = tabs["edge-to-face"].pipe(bool(align_faces))
            structure, _ = edge_structure(pipe, structure_payload)
            best, text = suggest("edge-to-face", structure, pipe)
            return best["exemplar"], text

    def suggest_pose(files_payload, photo_payload):
        with _user_errors("pose-to-body"):
            pipe = tabs["pose-to-body"].pipe()
            structure, _ = pose_structure(pipe, files_payload, photo_payload)
            best, text = suggest("pose-to-body", structure, pipe)
            structure_file = best.get("exemplar_structure")
            return best["exemplar"], [structure_file] if structure_file else None, text

    def suggest_oil(photo_payload):
        with _user_errors("oil-portrait"):
            pipe = tabs["oil-portrait"].pipe(align_faces=True)
            structure, _ = _view(pipe, pipe.structure_encoder.extract(read_image(photo_payload, "photo")))
            best, text = suggest("oil-portrait", structure, pipe)
            return best["exemplar"], text

    # ------------------------------------------------------------------ layout

    def _decode(component: gr.components.Component, payload: Any, what: str) -> Any:
        """Gradio's own preprocessing of ``payload`` (the events skip it), with a clear error for unreadable uploads."""
        if payload is None:
            return None
        check_upload_size(payload, what)  # from the headers, before Gradio decodes anything
        try:
            return component.preprocess(component.data_model.model_validate(payload))
        except gr.Error:
            raise
        except Exception:  # noqa: BLE001 - PIL raises many kinds on corrupt files
            raise gr.Error(f"{what}: cannot read the upload as an image; is the file corrupt or not an image?") from None

    def result_column(task: str):
        with gr.Column():
            # short labels: they name the endpoint's outputs in the API docs and for MCP clients
            result = gr.Image(
                label="Result", type="pil", format="png", interactive=False, buttons=["fullscreen"], elem_id=f"{task}-result",
            )
            gr.Markdown(
                f"Shown enlarged to at least {DISPLAY_SIDE} px; the download below has the model's true size. The warps "
                "are the exemplar as the correspondence placed it, coarsest level first.", elem_classes=["cocosnet-note"],
            )  # fmt: skip
            warps = gr.Gallery(  # height "auto": every square warp whole, with its caption, at any page width
                label="Warps", columns=4, height="auto", object_fit="contain", format="png", interactive=False,
                allow_preview=True, elem_id=f"{task}-warps",
            )
            with gr.Row():
                structure_view = gr.Image(label="Structure as read", type="pil", format="png", interactive=False)
                exemplar_view = gr.Image(label="Exemplar structure", type="pil", format="png", interactive=False)
            download = gr.File(label="Download", interactive=False, elem_id=f"{task}-download")
        return [result, warps, structure_view, exemplar_view, download]

    def exemplar_gallery(task: str, targets: list[gr.components.Component]):
        """The tab's exemplar gallery (click to use one), and the Suggest button + its ranking text."""
        entries = tabs[task].examples.gallery
        if not entries:
            return None, None
        gallery = gr.Gallery(
            value=[(g["exemplar"], g.get("label") or Path(g["exemplar"]).stem) for g in entries],
            label="Exemplar gallery (click to use)", columns=4, height=180, allow_preview=False, object_fit="contain",
            interactive=False, elem_id=f"{task}-gallery",
        )

        def pick(evt: gr.SelectData):
            entry = entries[evt.index]
            values = [entry["exemplar"], entry.get("exemplar_structure")]
            if task == "pose-to-body" and values[1]:
                values[1] = [values[1]]
            # one output component takes the value itself (a one-element list put an "Error" badge in the box)
            return values[0] if len(targets) == 1 else values[: len(targets)]

        gallery.select(pick, None, targets, api_visibility="private")
        button = gr.Button("Suggest exemplar", size="sm", visible=suggest_available, elem_id=f"{task}-suggest")
        ranking = gr.Markdown(visible=suggest_available)
        return button, ranking

    def add_examples(task: str, inputs: list[gr.components.Component], keys: list[str]):
        rows = tabs[task].examples.rows
        if not rows:
            return
        values = [[([row[k]] if isinstance(inputs[j], gr.File) and row[k] else row[k]) for j, k in enumerate(keys)] for row in rows]
        labels = [row.get("label") or Path(row[keys[0]]).stem for row in rows]
        gr.Examples(values, inputs, example_labels=labels, label="Examples (click, then Translate)")

    def tab_header(task: str):
        gr.Markdown(DESCRIPTIONS[task])
        note = config.describe(task)
        gr.Markdown(note, elem_id=f"{task}-weights")

    def translate_button(task: str) -> tuple[gr.Button, gr.Button]:
        """Translate (disabled with a permanent explanation beside it when the tab's weights cannot be had; the
        endpoint still answers, with the same explanation) and Stop, shown while a translation runs."""
        problem = store.missing(task)
        release = _release_for(task) if problem is not None else None
        with gr.Row(equal_height=True):
            button = gr.Button("Translate", variant="primary", interactive=problem is None, scale=1, elem_id=f"{task}-translate")
            stop = gr.Button("Stop", variant="stop", visible=False, scale=0, min_width=100, elem_id=f"{task}-stop")
            if release is not None:  # a published checkpoint exists: one click instead of a terminal
                fetch = gr.Button(
                    f"Download the published {release.title} weights ({release.license.upper()} licence)", variant="secondary",
                    scale=2, elem_id=f"{task}-fetch",
                )  # fmt: skip
            if problem is not None:
                missing = gr.Markdown(f"**Translate is disabled in this tab.** {problem}", elem_id=f"{task}-missing", scale=4)
        if release is not None:

            def fetch_weights(progress=gr.Progress(track_tqdm=True)):
                """Download and convert the published weights for this tab (cached on disk), then enable Translate."""
                from ..release import fetch_release
                from ..weights import RELEASE_PREFIX

                with _user_errors(task):
                    fetch_release(release.name)  # the download's tqdm bar shows in the tab
                store.use(task, f"{RELEASE_PREFIX}{release.name}", "downloaded in the app")
                return gr.update(interactive=True), gr.update(visible=False), gr.update(visible=False)

            fetch.click(
                fetch_weights, None, [button, fetch, missing], api_name=f"fetch_{task.replace('-', '_')}_weights",
                api_visibility="undocumented", show_progress="full",
            )  # fmt: skip
        return button, stop

    def on_translate(task: str, buttons: tuple[gr.Button, gr.Button], fn: Callable, inputs: list, outputs: list) -> None:
        """Wire a tab's Translate (its API endpoint) and Stop (cancels it: the worker stops at the next level)."""
        run, stop = buttons
        event = run.click(fn, inputs, outputs, api_name=API_NAMES[task], **translate_kwargs)
        show, hide = (lambda: gr.update(visible=True)), (lambda: gr.update(visible=False))
        run.click(show, None, stop, queue=False, api_visibility="private", show_progress="hidden")
        event.then(hide, None, stop, queue=False, api_visibility="private", show_progress="hidden")
        stop.click(hide, None, stop, cancels=[event], queue=False, api_visibility="private", show_progress="hidden")

    def colour_editor_upload(payload):
        """An uploaded grey index mask shown in the ADE20k colours (the same classes; masks with skyscrapers,
        which share road's colour, stay grey)."""
        if not isinstance(payload, dict) or not payload.get("background"):
            return gr.skip()
        with _user_errors("mask-to-image"):
            value = _decode(editor, payload, "structure")
        background = None if value is None else value.get("background")
        coloured = None if background is None else index_mask_preview(np.asarray(background), rgb=True)
        if coloured is None:
            return gr.skip()
        return {"background": coloured, "layers": [], "composite": coloured}

    def colour_mask_upload(payload):
        """An uploaded index mask replaced by the same mask as a palette PNG (class ids kept, ADE20k colours)."""
        path = payload.get("path") if isinstance(payload, dict) else payload
        if not path:
            return gr.skip()
        with _user_errors("mask-to-image"):
            image = read_image(payload, "exemplar mask", photo=False)
        preview = index_mask_preview(image)
        # a PIL image: Gradio writes it (PNG, palette kept) into its own cache, which `delete_cache` empties
        return gr.skip() if preview is None else preview

    image_upload = dict(type="filepath", image_mode=None, sources=["upload", "clipboard"], height=280)
    translate_kwargs = dict(preprocess=False, show_progress="full")

    # delete_cache: every hour, the files this demo wrote into Gradio's cache (results, previews) older than a day go
    with gr.Blocks(title=title, delete_cache=(3600, 86400)) as demo:
        gr.Markdown(
            f"# {title}\nCoCosNet v2 synthesises an image with the **structure** of one input and the **appearance** "
            "of an exemplar, through a full-resolution correspondence between them."
        )
        with gr.Tabs():
            # -------------------------------------------------- mask-to-image
            with gr.Tab(TITLES["mask-to-image"], id="mask-to-image"):
                tab_header("mask-to-image")
                with gr.Row():
                    with gr.Column():
                        editor = gr.ImageEditor(
                            label="Structure: ADE20k mask (upload or draw) or a photo",
                            type="numpy", image_mode="RGBA", format="png", sources=["upload", "clipboard"],
                            brush=gr.Brush(
                                colors=[_hex(ADE20K_PALETTE[c - 1]) for c in BRUSH_CLASSES],
                                default_color=_hex(ADE20K_PALETTE[BRUSH_CLASSES[0] - 1]), color_mode="fixed",
                            ),
                            eraser=gr.Eraser(), transforms=[], layers=False, canvas_size=(512, 512), height=360,
                            elem_id="mask-to-image-structure",
                        )
                        gr.HTML(_legend_html())
                    with gr.Column():
                        exemplar = gr.Image(label="Exemplar photo", elem_id="mask-to-image-exemplar", **image_upload)
                        exemplar_mask = gr.Image(
                            label="Exemplar mask (index or palette PNG; extracted from the photo when empty and a segmenter is installed)",
                            format="png", elem_id="mask-to-image-exemplar-mask", **image_upload,
                        )
                        suggest_button, ranking = exemplar_gallery("mask-to-image", [exemplar, exemplar_mask])
                run = translate_button("mask-to-image")
                outputs = result_column("mask-to-image")
                on_translate("mask-to-image", run, mask_to_image, [editor, exemplar, exemplar_mask], outputs)
                editor.upload(colour_editor_upload, editor, editor, preprocess=False, api_visibility="private", show_progress="hidden")
                exemplar_mask.upload(colour_mask_upload, exemplar_mask, exemplar_mask, preprocess=False, api_visibility="private", show_progress="hidden")
                if suggest_button is not None:
                    suggest_button.click(suggest_mask, [editor], [exemplar, exemplar_mask, ranking], preprocess=False, api_visibility="undocumented")
                add_examples("mask-to-image", [editor, exemplar, exemplar_mask], ["structure", "exemplar", "exemplar_structure"])

            # -------------------------------------------------- edge-to-face
            with gr.Tab(TITLES["edge-to-face"], id="edge-to-face"):
                tab_header("edge-to-face")
                with gr.Row():
                    with gr.Column():
                        edges = gr.Image(label="Structure: edge map or face photo", elem_id="edge-to-face-structure", **image_upload)
                        align = gr.Checkbox(
                            value=False, label="Align faces (dlib, FFHQ/MetFaces crop) in photos and the exemplar",
                        )
                    with gr.Column():
                        edge_exemplar_image = gr.Image(label="Exemplar portrait", elem_id="edge-to-face-exemplar", **image_upload)
                        suggest_button, ranking = exemplar_gallery("edge-to-face", [edge_exemplar_image])
                run = translate_button("edge-to-face")
                outputs = result_column("edge-to-face")
                on_translate("edge-to-face", run, edge_to_face, [edges, edge_exemplar_image, align], outputs)
                if suggest_button is not None:
                    suggest_button.click(suggest_edge, [edges, align], [edge_exemplar_image, ranking], preprocess=False, api_visibility="undocumented")
                add_examples("edge-to-face", [edges, edge_exemplar_image], ["structure", "exemplar"])

            # -------------------------------------------------- pose-to-body
            with gr.Tab(TITLES["pose-to-body"], id="pose-to-body"):
                tab_header("pose-to-body")
                with gr.Row():
                    with gr.Column():
                        pose_file = gr.File(
                            label="Pose: OpenPose .json, or NAME_candidate.txt + NAME_subset.txt",
                            file_count="multiple", file_types=[".json", ".txt"], elem_id="pose-to-body-pose",
                        )
                        pose_photo = gr.Image(label="…or a photo of a person (needs a pose backend)", **image_upload)
                    with gr.Column():
                        pose_exemplar_image = gr.Image(label="Exemplar photo", elem_id="pose-to-body-exemplar", **image_upload)
                        exemplar_pose = gr.File(
                            label="Exemplar pose (.json or candidate + subset; extracted from the photo when empty)",
                            file_count="multiple", file_types=[".json", ".txt"],
                        )
                        suggest_button, ranking = exemplar_gallery("pose-to-body", [pose_exemplar_image, exemplar_pose])
                run = translate_button("pose-to-body")
                outputs = result_column("pose-to-body")
                on_translate("pose-to-body", run, pose_to_body, [pose_file, pose_exemplar_image, pose_photo, exemplar_pose], outputs)
                if suggest_button is not None:
                    suggest_button.click(
                        suggest_pose, [pose_file, pose_photo], [pose_exemplar_image, exemplar_pose, ranking],
                        preprocess=False, api_visibility="undocumented",
                    )
                add_examples("pose-to-body", [pose_file, pose_exemplar_image, exemplar_pose], ["structure", "exemplar", "exemplar_structure"])

            # -------------------------------------------------- oil-portrait
            with gr.Tab(TITLES["oil-portrait"], id="oil-portrait"):
                tab_header("oil-portrait")
                with gr.Row():
                    with gr.Column():
                        photo = gr.Image(label="Photo of a person", elem_id="oil-portrait-photo", **image_upload)
                    with gr.Column():
                        portrait = gr.Image(label="Portrait exemplar", elem_id="oil-portrait-exemplar", **image_upload)
                        suggest_button, ranking = exemplar_gallery("oil-portrait", [portrait])
                run = translate_button("oil-portrait")
                outputs = result_column("oil-portrait")
                on_translate("oil-portrait", run, oil_portrait, [photo, portrait], outputs)
                if suggest_button is not None:
                    suggest_button.click(suggest_oil, [photo], [portrait, ranking], preprocess=False, api_visibility="undocumented")
                add_examples("oil-portrait", [photo, portrait], ["structure", "exemplar"])
    demo.store = store  # for callers that want to preload or inspect
    return demo
