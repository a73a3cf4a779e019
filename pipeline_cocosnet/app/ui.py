"""The CoCosNet v2 demo as Gradio Blocks: one tab per task, each a structure + an exemplar → an image.

The tabs are a loop over the task registry (:mod:`pipeline_cocosnet.tasks`): a task's ``Tab``
lists its inputs by kind and role, and this module turns each kind into a component and a
reader. Every tab shows the structure as the model reads it, the result and the exemplar
warped by the learned correspondence (per level, coarse to fine). Translate events are named
API endpoints (``/<task with underscores>``, e.g. ``/pose_to_body``).
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
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
from ..tasks import TASKS, TabInput, Task
from .examples import TabExamples, default_examples_dir, load_examples
from .inputs import check_upload_size, editor_structure, index_mask_preview, read_image, upload_paths
from .weights import PipelineStore, WeightsConfig, WeightsUnavailable

__all__ = ["build_demo", "API_NAMES", "BRUSH_CLASSES", "DISPLAY_SIDE"]

_log = logging.getLogger(__name__)

#: results smaller than this (longest side, pixels) are enlarged (nearest neighbour, whole factors) for display;
#: the download keeps the true resolution
DISPLAY_SIDE = 512

#: tab → API endpoint name (``/mask_to_image`` …)
API_NAMES = {name: task.api_name for name, task in TASKS.items()}

#: whether this pipeline version can rank a gallery (the tabs' Suggest exemplar button)
_SUGGEST = hasattr(CoCosNetPipeline, "suggest_exemplars")

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
    """What the handlers of one tab need: its task, pipelines and examples."""

    def __init__(self, task: Task, store: PipelineStore, examples: TabExamples):
        self.task = task
        self.store = store
        self.examples = examples
        self._views: dict[Any, CoCosNetPipeline] = {}
        self._lock = threading.Lock()

    def pipe(self, options: dict[str, Any] | None = None) -> CoCosNetPipeline:
        """The tab's pipeline; with encoder options (the task's own, e.g. face alignment, and the tab's
        checkboxes), the same components (shared, diffusers' ``from_pipe``) with those options. Kept per
        pipeline and options, so concurrent requests with different options never change each other's encoder."""
        pipe = self.store.get(self.task.name)
        options = {**self.task.encoder_options, **(options or {})}
        if not options:
            return pipe
        with self._lock:
            key = id(pipe), tuple(sorted(options.items()))
            if key not in self._views:
                merged = {**pipe.structure_encoder.get_config(), **options}
                self._views[key] = CoCosNetPipeline.from_pipe(pipe, structure_encoder=merged)
            return self._views[key]

    def release(self):
        """The published release that serves this tab, if there is one (its task's ``weights.release``)."""
        from ..release import RELEASES

        return RELEASES.get(self.task.weights.release or "")


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
        raise ValueError(f"cannot extract the structure of the {what}: {error}") from None


def _what(item: TabInput) -> str:
    """How messages name an input: its parameter name in words (``exemplar_mask`` → "exemplar mask")."""
    return item.name.replace("_", " ")


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


def _read_structure(item: TabInput, component: gr.components.Component, payload: Any, pipe: CoCosNetPipeline) -> Any:
    """One structure input's value as the encoder takes it, or ``None`` when nothing was given."""
    what = _what(item)
    if item.kind == "ade20k-editor":
        value = _decode(component, payload, what)
        return None if value is None else editor_structure(value, pipe.structure_encoder.extract, what)[0]
    if item.kind == "keypoints":
        return _keypoints_upload(payload, what)
    image = read_image(payload, what, required=False, photo=item.kind == "photo")
    if image is None or item.kind != "photo":
        return image  # maps and images the encoder reads itself
    return _extract(pipe, image, what)


def _read_exemplar_structure(item: TabInput, payload: Any, exemplar: Image.Image) -> Any:
    """The exemplar structure given by the visitor (it must have the exemplar photo's shape), or ``None``."""
    what = _what(item)
    if item.kind == "keypoints":
        return _keypoints_upload(payload, what)
    image = read_image(payload, what, required=False, photo=False)
    if image is not None and abs(image.width / image.height - exemplar.width / exemplar.height) > 0.02:
        raise ValueError(
            f"{what}: it is {image.width}×{image.height} but the exemplar photo {exemplar.width}×{exemplar.height}; "
            "it must be the photo's structure (same shape)"
        )
    return image


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
    raise ValueError(
        f"{what}: upload one OpenPose .json file, or a NAME_candidate.txt and NAME_subset.txt pair "
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


def _signature(task: Task) -> inspect.Signature:
    """The endpoint's parameters: the tab's inputs in order (optional ones default to None/False), then Gradio's progress."""
    parameters = [
        inspect.Parameter(
            item.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=(False if item.role == "option" else None) if task.tab.is_optional(item) else inspect.Parameter.empty,
        )
        for item in task.tab.inputs
    ]  # fmt: skip
    progress = inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress(track_tqdm=True))
    return inspect.Signature([*parameters, progress])


def _docstring(task: Task) -> str:
    """The endpoint's docstring (the API page and MCP clients read it): the task's summary and its inputs."""
    args = "\n".join(f"    {item.name}: {item.doc}" for item in task.tab.inputs)
    return (
        f"{task.tab.summary}\n\nArgs:\n{args}\n\nReturns:\n    The result enlarged for display, the exemplar warped at each "
        "correspondence level, the structure and the exemplar structure as the model reads them, and the result at its "
        "true resolution (PNG).\n"
    )


def _make_component(task: Task, item: TabInput) -> gr.components.Component:
    """The component for one input, by kind."""
    elem_id = f"{task.name}-{item.elem}" if item.elem else None
    image_upload = dict(type="filepath", image_mode=None, sources=["upload", "clipboard"], height=280, elem_id=elem_id)
    if item.kind == "ade20k-editor":
        colours = [_hex(ADE20K_PALETTE[c - 1]) for c in BRUSH_CLASSES]
        editor = gr.ImageEditor(
            label=item.label, type="numpy", image_mode="RGBA", format="png", sources=["upload", "clipboard"],
            brush=gr.Brush(colors=colours, default_color=colours[0], color_mode="fixed"),
            eraser=gr.Eraser(), transforms=[], layers=False, canvas_size=(512, 512), height=360, elem_id=elem_id,
        )  # fmt: skip
        gr.HTML(_legend_html())
        return editor
    if item.kind == "keypoints":
        return gr.File(label=item.label, file_count="multiple", file_types=[".json", ".txt"], elem_id=elem_id)
    if item.kind == "checkbox":
        return gr.Checkbox(value=False, label=item.label, elem_id=elem_id)
    return gr.Image(label=item.label, **({"format": "png"} if item.kind == "index-mask" else {}), **image_upload)


def _colour_on_upload(task: Task, item: TabInput, component: gr.components.Component) -> None:
    """Uploaded ADE20k index masks are shown in the class colours (the same classes)."""
    what = _what(item)

    def colour_editor_upload(payload):
        """The editor's grey index mask shown in the ADE20k colours (masks with skyscrapers, which share road's
        colour, stay grey)."""
        if not isinstance(payload, dict) or not payload.get("background"):
            return gr.skip()
        with _user_errors(task.name):
            value = _decode(component, payload, what)
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
        with _user_errors(task.name):
            image = read_image(payload, what, photo=False)
        preview = index_mask_preview(image)
        # a PIL image: Gradio writes it (PNG, palette kept) into its own cache, which `delete_cache` empties
        return gr.skip() if preview is None else preview

    handler = {"ade20k-editor": colour_editor_upload, "index-mask": colour_mask_upload}.get(item.kind)
    if handler is not None:
        component.upload(handler, component, component, preprocess=False, api_visibility="private", show_progress="hidden")


def _result_column(task: Task) -> list[gr.components.Component]:
    """The outputs every tab shows (short labels: they name the endpoint's outputs in the API docs and for MCP)."""
    with gr.Column():
        result = gr.Image(
            label="Result", type="pil", format="png", interactive=False, buttons=["fullscreen"], elem_id=f"{task.name}-result",
        )  # fmt: skip
        gr.Markdown(
            f"Shown enlarged to at least {DISPLAY_SIDE} px; the download below has the model's true size. The warps "
            "are the exemplar as the correspondence placed it, coarsest level first.", elem_classes=["cocosnet-note"],
        )  # fmt: skip
        warps = gr.Gallery(  # height "auto": every square warp whole, with its caption, at any page width
            label="Warps", columns=4, height="auto", object_fit="contain", format="png", interactive=False,
            allow_preview=True, elem_id=f"{task.name}-warps",
        )  # fmt: skip
        with gr.Row():
            structure_view = gr.Image(label="Structure as read", type="pil", format="png", interactive=False)
            exemplar_view = gr.Image(label="Exemplar structure", type="pil", format="png", interactive=False)
        download = gr.File(label="Download", interactive=False, elem_id=f"{task.name}-download")
    return [result, warps, structure_view, exemplar_view, download]


@_gpu
def _generate(tab: _Tab, options: dict[str, Any], structure: Any, exemplar: Any, exemplar_structure: Any):
    """Run the tab's pipeline: yields each level's warp (a PIL image) as the level finishes
    (``callback_on_level_end``), then the pipeline's output.

    When this generator is closed before the end (Gradio closes it when the visitor presses Stop
    or leaves the page, once the level in progress has been sent), the call stops at its next
    PatchMatch iteration (:class:`~pipeline_cocosnet.PipelineInterrupted`), without running the translator.
    """
    pipe = tab.pipe(options)
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
    name = f"cocosnet-translate-{tab.task.name}"
    worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True, name=name)
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


def _read_inputs(tab: _Tab, components: dict[str, Any], values: dict[str, Any]):
    """``(pipeline, options, structure, structure view)`` from the tab's structure and option inputs."""
    task = tab.task
    options = {item.name: True for item in task.tab.by_role("option") if values.get(item.name)}
    pipe = tab.pipe(options)
    structure = None
    for item in task.tab.by_role("structure"):  # the first one given
        structure = _read_structure(item, components[item.name], values.get(item.name), pipe)
        if structure is not None:
            break
    if structure is None:
        raise ValueError(task.tab.missing_structure)
    return pipe, options, *_view(pipe, structure)


def _read_exemplar(tab: _Tab, pipe: CoCosNetPipeline, values: dict[str, Any]):
    """``(exemplar photo, its structure, the structure's view)``; the structure is extracted when not given."""
    (exemplar_item,) = tab.task.tab.by_role("exemplar")
    exemplar = read_image(values.get(exemplar_item.name), _what(exemplar_item))
    structure = None
    for item in tab.task.tab.by_role("exemplar_structure"):
        structure = _read_exemplar_structure(item, values.get(item.name), exemplar)
    if structure is None:
        structure = _extract(pipe, exemplar, "exemplar photo")
    return exemplar, *_view(pipe, structure)


def _translate_handler(tab: _Tab, components: dict[str, Any]) -> Callable:
    """The tab's API endpoint: its inputs by name (see :func:`_signature`), streaming :func:`_stream`'s outputs."""
    names = [item.name for item in tab.task.tab.inputs]

    def translate(*args):
        values = dict(zip(names, args))  # Gradio appends the progress tracker after the inputs
        with _user_errors(tab.task.name):
            pipe, options, structure, structure_view = _read_inputs(tab, components, values)
            exemplar, exemplar_structure, exemplar_view = _read_exemplar(tab, pipe, values)
            yield from _stream(_generate(tab, options, structure, exemplar, exemplar_structure), structure_view, exemplar_view)

    translate.__name__ = translate.__qualname__ = tab.task.api_name
    translate.__doc__ = _docstring(tab.task)
    translate.__signature__ = _signature(tab.task)
    return translate


def _exemplar_gallery(tab: _Tab, targets: list[TabInput], components: dict[str, Any]) -> None:
    """The tab's exemplar gallery (click to use one; ``targets``: the exemplar inputs it fills), and the
    Suggest button + its ranking text."""
    entries = tab.examples.gallery
    if not entries:
        return
    gallery = gr.Gallery(
        value=[(g["exemplar"], g.get("label") or Path(g["exemplar"]).stem) for g in entries],
        label="Exemplar gallery (click to use)", columns=4, height=180, allow_preview=False, object_fit="contain",
        interactive=False, elem_id=f"{tab.task.name}-gallery",
    )

    def values_of(entry: dict[str, Any]) -> list[Any]:
        """A gallery entry as the target components take it (a file list for keypoint inputs)."""
        values = [entry["exemplar"], entry.get("exemplar_structure")][: len(targets)]
        return [[v] if v and item.kind == "keypoints" else v for item, v in zip(targets, values)]

    def pick(evt: gr.SelectData):
        values = values_of(entries[evt.index])
        # one output component takes the value itself (a one-element list put an "Error" badge in the box)
        return values[0] if len(values) == 1 else values

    outputs = [components[item.name] for item in targets]
    gallery.select(pick, None, outputs, api_visibility="private")
    button = gr.Button("Suggest exemplar", size="sm", visible=_SUGGEST, elem_id=f"{tab.task.name}-suggest")
    ranking = gr.Markdown(visible=_SUGGEST)

    def suggest(*args):
        """The gallery exemplar whose structure best matches the tab's structure, and the top three."""
        values = dict(zip([item.name for item in inputs], args))
        with _user_errors(tab.task.name):
            pipe, _, structure, _ = _read_inputs(tab, components, values)
            exemplars = [g["exemplar"] for g in entries]
            structures = [g.get("exemplar_structure") for g in entries]
            ranked = pipe.suggest_exemplars(
                structure, exemplars, structures if all(s is not None for s in structures) else None,
                top_k=min(3, len(entries)),
            )  # fmt: skip
        lines = [
            f"{rank + 1}. {entries[s.index].get('label') or Path(entries[s.index]['exemplar']).stem}: score {s.score:.3f}"
            for rank, s in enumerate(ranked)
        ]
        return *values_of(entries[ranked[0].index]), "Best matching gallery exemplars:\n\n" + "\n".join(lines)

    inputs = [item for item in tab.task.tab.inputs if item.role in ("structure", "option")]
    if _SUGGEST:
        button.click(
            suggest, [components[item.name] for item in inputs], [*outputs, ranking], preprocess=False,
            api_name=f"suggest_{tab.task.api_name}", api_visibility="undocumented",
        )  # fmt: skip


def _add_examples(tab: _Tab, components: dict[str, Any]) -> None:
    """Clickable example rows: the first structure input, the exemplar and its structure (when the tab has one)."""
    rows = tab.examples.rows
    if not rows:
        return
    by_key = {"structure": tab.task.tab.by_role("structure")[0], "exemplar": tab.task.tab.by_role("exemplar")[0]}
    by_key.update({"exemplar_structure": item for item in tab.task.tab.by_role("exemplar_structure")})
    items = list(by_key.items())
    values = [[([row[k]] if item.kind == "keypoints" and row[k] else row[k]) for k, item in items] for row in rows]
    labels = [row.get("label") or Path(row["structure"]).stem for row in rows]
    gr.Examples(values, [components[item.name] for _, item in items], example_labels=labels, label="Examples (click, then Translate)")


def _translate_buttons(tab: _Tab) -> tuple[gr.Button, gr.Button]:
    """Translate (disabled with a permanent explanation below it when the tab's weights cannot be had; the
    endpoint still answers, with the same explanation), Stop (shown while a translation runs) and, for a
    task with published weights, the button that downloads them."""
    task = tab.task.name
    problem = tab.store.missing(task)
    release = tab.release() if problem is not None else None
    with gr.Row():  # buttons only: the explanation goes below (beside them, it stretched them to its height)
        button = gr.Button("Translate", variant="primary", interactive=problem is None, scale=1, elem_id=f"{task}-translate")
        stop = gr.Button("Stop", variant="stop", visible=False, scale=0, min_width=100, elem_id=f"{task}-stop")
        if release is not None:  # a published checkpoint exists: one click instead of a terminal
            fetch = gr.Button(
                f"Download the published {release.title} weights ({release.license.upper()} licence)", variant="secondary",
                scale=1, elem_id=f"{task}-fetch",
            )  # fmt: skip
    if problem is not None:
        missing = gr.Markdown(f"**Translate is disabled in this tab.** {problem}", elem_id=f"{task}-missing")
    if release is not None:

        def fetch_weights(progress=gr.Progress(track_tqdm=True)):
            """Download and convert the published weights for this tab (cached on disk), then enable Translate."""
            from ..release import fetch_release
            from ..weights import RELEASE_PREFIX

            with _user_errors(task):
                fetch_release(release.name)  # the download's tqdm bar shows in the tab
            tab.store.use(task, f"{RELEASE_PREFIX}{release.name}", "downloaded in the app")
            return gr.update(interactive=True), gr.update(visible=False), gr.update(visible=False)

        fetch.click(
            fetch_weights, None, [button, fetch, missing], api_name=f"fetch_{tab.task.api_name}_weights",
            api_visibility="undocumented", show_progress="full",
        )  # fmt: skip
    return button, stop


def _on_translate(tab: _Tab, buttons: tuple[gr.Button, gr.Button], components: dict[str, Any], outputs: list) -> None:
    """Wire a tab's Translate (its API endpoint) and Stop (cancels it: the worker stops at the next level)."""
    run, stop = buttons
    inputs = [components[item.name] for item in tab.task.tab.inputs]
    show, hide = (lambda: gr.update(visible=True)), (lambda: gr.update(visible=False))
    # registered before the translation: the page runs a trigger's listeners in order, so registered after
    # it, showing Stop waited for the translation to end (and then left Stop visible for good)
    run.click(show, None, stop, queue=False, api_visibility="private", show_progress="hidden")
    event = run.click(
        _translate_handler(tab, components), inputs, outputs, api_name=tab.task.api_name, preprocess=False, show_progress="full",
    )  # fmt: skip
    event.then(hide, None, stop, queue=False, api_visibility="private", show_progress="hidden")
    stop.click(hide, None, stop, cancels=[event], queue=False, api_visibility="private", show_progress="hidden")


def _build_tab(tab: _Tab) -> None:
    """One tab: what it is, its inputs (structure and options left, exemplar right, then the gallery), the
    examples, the buttons, the outputs."""
    task = tab.task
    gr.Markdown(task.tab.description)
    gr.Markdown(tab.store.config.describe(task.name), elem_id=f"{task.name}-weights")
    components: dict[str, gr.components.Component] = {}
    with gr.Row():
        for roles in (("structure", "option"), ("exemplar", "exemplar_structure")):
            with gr.Column():
                for item in (item for item in task.tab.inputs if item.role in roles):
                    components[item.name] = _make_component(task, item)
                    _colour_on_upload(task, item, components[item.name])
                if "exemplar" in roles:
                    targets = [item for item in task.tab.inputs if item.role in roles]
                    _exemplar_gallery(tab, targets, components)
    _add_examples(tab, components)  # under the inputs they fill, before Translate
    buttons = _translate_buttons(tab)
    _on_translate(tab, buttons, components, _result_column(task))


def build_demo(
    config: WeightsConfig | None = None,
    *,
    store: PipelineStore | None = None,
    examples_dir: str | Path | None = "auto",
    device: str = "auto",
    title: str = "CoCosNet v2: exemplar-based image translation",
) -> gr.Blocks:
    """Build the demo (without launching it): one tab per task of :data:`pipeline_cocosnet.tasks.TASKS`.

    Args:
        config: which weights each tab uses (default: from the environment, with the tasks' defaults).
        store: a ready :class:`PipelineStore` (overrides ``config``/``device``).
        examples_dir: folder with ``<task>/examples.json`` manifests; ``"auto"``: the checkout's ``examples/``.
        device: where pipelines run (``"auto"``: CUDA when available).
    """
    store = store or PipelineStore(config or WeightsConfig.resolve(), device=device)
    examples_dir = default_examples_dir() if examples_dir == "auto" else examples_dir
    tabs = [_Tab(task, store, load_examples(examples_dir, name)) for name, task in TASKS.items()]

    # delete_cache: every hour, the files this demo wrote into Gradio's cache (results, previews) older than a day go
    with gr.Blocks(title=title, delete_cache=(3600, 86400)) as demo:
        gr.Markdown(
            f"# {title}\nCoCosNet v2 synthesises an image with the **structure** of one input and the **appearance** "
            "of an exemplar, through a full-resolution correspondence between them."
        )
        with gr.Tabs():
            for tab in tabs:
                with gr.Tab(tab.task.tab.title, id=tab.task.name):
                    _build_tab(tab)
    demo.store = store  # for callers that want to preload or inspect
    return demo
