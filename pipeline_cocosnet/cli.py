"""The ``cocosnet`` command line."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path


#: what --model takes (pipeline_cocosnet/weights.py resolves it)
MODEL_HELP = ("pipeline folder, Hugging Face Hub repo id, release:deepfashionhd (the published checkpoint, downloaded and converted once), the research code's checkpoint folder (converted once), or demo")


def _print_notes(caught: list) -> None:
    """Warnings recorded while converting: the reader's notes (e.g. archive entries it ignored) as one line each."""
    import warnings

    from .convert import CheckpointWarning

    for warning in caught:
        if issubclass(warning.category, CheckpointWarning):
            print(f"note: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)


def _convert(args: argparse.Namespace) -> None:
    import warnings

    from .convert import convert_checkpoints, find_checkpoint_pair

    if args.checkpoint_dir is not None:
        if args.corr is not None or args.translator is not None:
            raise ValueError("give either --checkpoint-dir or --corr and --translator, not both")
        corr, translator = find_checkpoint_pair(args.checkpoint_dir, args.epoch)
    elif args.corr is None or args.translator is None:
        raise ValueError("give --checkpoint-dir DIR (the research code's checkpoint folder) or both --corr and --translator")
    else:
        corr, translator = args.corr, args.translator
    print(f"reading {corr} and {translator}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        correspondence, translator_model = convert_checkpoints(
            corr,
            translator,
            args.output,
            task=None if args.task == "none" else args.task,
            resolution=(args.resolution, args.resolution),
            variant=args.variant,
            ngf=args.ngf,
            nef=args.nef,
            label_channels=args.label_channels,
        )
    _print_notes(caught)
    print(
        f"converted: label channels {correspondence.config.label_channels}, nef {correspondence.config.nef}, "
        f"ngf {translator_model.config.ngf} → {Path(args.output).resolve()}"
        + (f" (float32 and {args.variant})" if args.variant else "")
    )


def _fetch_release(args: argparse.Namespace) -> None:
    import warnings

    from .hub import upload_pipeline_folder
    from .release import fetch_release

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        folder = fetch_release(
            args.release, url=args.url, output=args.output, archive=args.archive, variant=args.variant,
            progress=not args.quiet,
        )  # fmt: skip
    _print_notes(caught)
    print(f"pipeline folder: {folder.resolve()}")
    if args.push:
        message = "Upload CoCosNet v2 pipeline converted from the published release"
        print(f"pushed to {upload_pipeline_folder(folder, args.push, private=args.private, token=args.token, commit_message=message)}")


def _check_files(**files) -> None:
    """``FileNotFoundError`` (exit 2, one line) for the first given input file that does not exist: said before any
    model loads, so a typo costs nothing."""
    for what, values in files.items():
        for value in values if isinstance(values, (list, tuple)) else [values]:
            if value is not None and not Path(value).expanduser().is_file():
                raise FileNotFoundError(f"no such {what.replace('_', ' ')} file: {value}")


def _structure_arg(value: str | None):
    """A structure file: .npy label arrays are loaded, everything else goes to the task's encoder."""
    if value is None or not value.endswith(".npy"):
        return value
    import numpy as np

    return np.load(value).astype("float32")


def _translate(args: argparse.Namespace) -> None:
    _check_files(structure=args.structure, exemplar=args.exemplar, exemplar_structure=args.exemplar_structure)
    import torch

    from .precision import describe_dtype, resolve_dtype
    from .weights import load_pipeline

    dtype = resolve_dtype(args.dtype, args.device)
    pipe = load_pipeline(args.model, dtype=dtype, progress=not args.quiet).to(args.device)
    if not args.quiet:  # said once the model is there: a failed load stays a one-line error
        print(f"running in {describe_dtype(dtype, args.dtype, args.device)} on {args.device}", file=sys.stderr)
    pipe.set_progress_bar_config(disable=args.quiet)
    generator = torch.Generator().manual_seed(args.seed) if args.seed is not None else None
    output = pipe(
        _structure_arg(args.structure),
        args.exemplar,
        _structure_arg(args.exemplar_structure),
        height=args.height,
        width=args.width,
        generator=generator,
        return_warps=args.warps_dir is not None,
        match_input_size=args.match_input_size,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    output.images[0].save(args.out)
    if args.warps_dir is not None:
        args.warps_dir.mkdir(parents=True, exist_ok=True)
        for level in output.warps:
            level[0].save(args.warps_dir / f"warp_{level[0].height}x{level[0].width}.png")
    print(f"wrote {args.out}")


def _suggest(args: argparse.Namespace) -> None:
    if args.exemplar_structures and len(args.exemplar_structures) != len(args.exemplars):
        raise ValueError(f"got {len(args.exemplars)} exemplars but {len(args.exemplar_structures)} exemplar structures")
    _check_files(structure=args.structure, exemplar=args.exemplars, exemplar_structure=args.exemplar_structures)
    from .weights import load_pipeline

    pipe = load_pipeline(args.model).to(args.device)
    structures = [_structure_arg(s) for s in args.exemplar_structures] if args.exemplar_structures else None
    suggestions = pipe.suggest_exemplars(
        _structure_arg(args.structure),
        [str(path) for path in args.exemplars],
        structures,
        height=args.height,
        width=args.width,
        top_k=args.top_k,
    )
    for rank, suggestion in enumerate(suggestions, 1):
        print(f"{rank}\t{suggestion.score:.4f}\t{args.exemplars[suggestion.index]}")


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """diffusers' "Loading pipeline components" bar off while a model loads (one per process would interleave)."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    try:
        yield
    finally:
        diffusers_logging.enable_progress_bar()


def _translate_dataset(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object

    from .evaluation import DatasetRunSummary, read_pairs, translate_dataset
    from .precision import describe_dtype, resolve_dtype
    from .weights import load_pipeline

    pairs, bad_rows = read_pairs(args.pairs)  # before any model loads: a bad file costs nothing
    # CPU processes under a launcher meet through gloo (accelerate's cpu=True); GPUs through NCCL
    state = PartialState(cpu=not torch.cuda.is_available() or str(args.device or "").startswith("cpu"))
    device = args.device or ("cpu" if state.device.type == "cpu" else str(state.device))
    dtype = resolve_dtype(args.dtype, device)
    with _quiet_loading():
        pipe = load_pipeline(args.model, dtype=dtype, progress=False).to(device)
    pipe.set_progress_bar_config(disable=True)
    if state.is_main_process:
        print(
            f"{len(pairs)} pairs on {state.num_processes} process(es), {describe_dtype(dtype, args.dtype, device)} on "
            f"{device} → {args.output}", file=sys.stderr,
        )  # fmt: skip
    summary = translate_dataset(
        pipe, pairs, args.output, bad_rows=bad_rows, batch_size=args.batch_size, height=args.height, width=args.width,
        warps=args.warps, progress=not args.quiet, state=state,
    )  # fmt: skip
    summaries = gather_object([summary]) if state.num_processes > 1 else [summary]
    if state.is_main_process:
        total = DatasetRunSummary.merge(summaries)
        for name, reason in total.failed[:10]:
            print(f"failed: {name}: {reason}", file=sys.stderr)
        if len(total.failed) > 10:
            print(f"… and {len(total.failed) - 10} more failures (see {Path(args.output) / 'manifest.jsonl'})", file=sys.stderr)
        print(f"translate-dataset: {total.line()}")
        return 1 if total.failed else 0
    return 0


def _make_pairs(args: argparse.Namespace) -> None:
    from .evaluation import pair_lists

    if args.dataset == "deepfashionhd":
        if args.root is None or args.list is None or args.refs is None:
            raise ValueError("deepfashionhd needs --root, --list (test keys) and --refs (target,exemplar lines)")
        path = pair_lists.deepfashionhd_pairs(args.root, args.list, args.refs, args.output)
    elif args.dataset == "ade20k":
        if args.root is None:
            raise ValueError("ade20k needs --root (the ADEChallengeData2016 folder)")
        path = pair_lists.ade20k_pairs(args.root, args.output, args.split, args.gallery_split)
    else:
        path = pair_lists.scene_pairs(args.output, args.count, args.size)
    rows = len(path.read_text().splitlines()) - 1
    print(f"{rows} pairs → {path}")


def _evaluate(args: argparse.Namespace) -> None:
    import json

    from .evaluation.evaluate import evaluate, format_result

    results = evaluate(
        args.generated, args.real, args.metrics, pairs=args.pairs, inception_weights=args.inception_weights,
        vgg_weights=args.vgg_weights, seed=args.seed, device=args.device, batch_size=args.batch_size,
        use_cache=not args.no_cache,
    )  # fmt: skip
    for metric, result in results.items():
        print(format_result(metric, result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        summary = {metric: result["value"] for metric, result in results.items()}
        args.json.write_text(json.dumps({**summary, "details": results}, indent=1) + "\n")


def _push(args: argparse.Namespace) -> None:
    from .hub import upload_pipeline_folder
    from .model_card import model_card
    from .pipeline import CoCosNetPipeline

    folder = args.folder
    pipe = CoCosNetPipeline.from_pretrained(folder)  # a folder that does not load is not pushed (one-line error)
    if not (folder / "README.md").is_file():  # the card alone is added; the folder is uploaded as it is
        model_card(pipe).save(folder / "README.md")
        print(f"wrote a model card: {folder / 'README.md'}")
    repo_id = upload_pipeline_folder(folder, args.repo_id, private=args.private, token=args.token, commit_message=args.message)
    print(f"pushed {folder} to {repo_id}")


def _add_size_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--height", type=int, help="working height, a multiple of 32 (default: the model's)")
    parser.add_argument("--width", type=int, help="working width, a multiple of 32 (default: the model's)")


def _add_dtype_argument(parser: argparse.ArgumentParser, help: str) -> None:
    # the names of precision.DTYPE_NAMES, written out: importing precision would import torch for --help
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"], help=help)


def build_parser() -> argparse.ArgumentParser:
    from .tasks import MODEL_TASKS, RESEARCH_TASK, TASKS  # light: no torch

    parser = argparse.ArgumentParser(
        prog="cocosnet",
        description="CoCosNet v2 exemplar-based image translation: convert weights, translate images.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    convert = commands.add_parser(
        "convert",
        help="convert the published latest_net_Corr.pth / latest_net_G.pth into a model folder",
        description=(
            "Read the published CoCosNet v2 checkpoints (.pth, loaded with weights_only=True, or the same state "
            "dicts as .safetensors; the release's archives with extra entries are read too), fold spectral "
            "normalisation, rename the keys and write a pipeline folder "
            "(model_index.json, correspondence/ and translator/ in safetensors, a model card) that "
            "CoCosNetPipeline.from_pretrained loads. Widths are read off the checkpoint; the flags only assert them."
        ),
    )
    convert.add_argument(
        "--checkpoint-dir", type=Path,
        help="the research code's checkpoint folder (e.g. checkpoints/deepfashionHD): its <epoch>_net_Corr.pth and "
        "<epoch>_net_G.pth are read, latest_net_D.pth is ignored",
    )  # fmt: skip
    convert.add_argument("--epoch", default="latest", help="with --checkpoint-dir: which epoch's files (default: latest)")
    convert.add_argument("--corr", type=Path, help="correspondence checkpoint (latest_net_Corr.pth)")
    convert.add_argument("--translator", type=Path, help="generator checkpoint (latest_net_G.pth)")
    convert.add_argument("--output", required=True, type=Path, help="folder to write")
    convert.add_argument(
        "--variant", choices=["fp16", "bf16"],
        help="also write the weights in half precision under diffusers' variant naming "
        "(from_pretrained(..., variant='fp16'); half the download)",
    )  # fmt: skip
    convert.add_argument("--ngf", type=int, help="generator width (release: 64)")
    convert.add_argument("--nef", type=int, help="correspondence feature width (release: 32)")
    convert.add_argument("--label-channels", type=int, help="structure channels (DeepFashionHD pose: 20)")
    convert.add_argument(
        "--task",
        default=RESEARCH_TASK,
        choices=[*MODEL_TASKS, "none"],
        help=f"structure encoder the pipeline uses (the published release: {RESEARCH_TASK})",
    )
    convert.add_argument("--resolution", type=int, default=512, help="training resolution (release: 512)")
    convert.set_defaults(run=_convert)

    translate = commands.add_parser(
        "translate",
        help="synthesise an image from a structure and an exemplar",
        description=(
            "Run a CoCosNet v2 pipeline once. STRUCTURE is whatever the model's task reads: "
            + ", ".join(f"{TASKS[name].structure_forms} ({name})" for name in MODEL_TASKS)
            + ", or a .npy label array (Cl×H×W in [0, 1]) for any model."
        ),
    )
    translate.add_argument("--model", required=True, help=MODEL_HELP)
    translate.add_argument("--structure", required=True, help="the structure to synthesise")
    translate.add_argument("--exemplar", required=True, type=Path, help="the photo whose appearance to use")
    translate.add_argument(
        "--exemplar-structure", help="the exemplar's structure (same forms as --structure; extracted when possible)"
    )
    translate.add_argument("--out", required=True, type=Path, help="output image file (.png, .jpg)")
    _add_size_arguments(translate)
    translate.add_argument("--match-input-size", action="store_true", help="resize the output to the structure image's size")
    translate.add_argument("--warps-dir", type=Path, help="also save the warped exemplar of every level here")
    translate.add_argument("--seed", type=int, help="random PatchMatch propagation order (as the research code)")
    translate.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, … (default: cpu)")
    _add_dtype_argument(translate, "weights dtype (default auto: bfloat16 on CPUs with AMX or AVX512-BF16, float32 elsewhere)")
    translate.add_argument("--quiet", action="store_true", help="no progress bar")
    translate.set_defaults(run=_translate)

    suggest = commands.add_parser(
        "suggest",
        help="rank exemplar photos by how well they match a structure",
        description=(
            "Rank a gallery of exemplars for one structure with the model's own dense-level matching scores "
            "(mean over structure positions of the best feature correlation). Prints rank, score and path, best "
            "first. Exemplar structures are extracted from the photos when not given (pose: a pose estimator, "
            "masks: a segmentation model, edges: the edge extractor)."
        ),
    )
    suggest.add_argument("--model", required=True, help=MODEL_HELP)
    suggest.add_argument("--structure", required=True, help="the structure (same forms as for translate)")
    suggest.add_argument("--exemplars", required=True, nargs="+", type=Path, help="the gallery photos")
    suggest.add_argument("--exemplar-structures", nargs="+", help="their structures, in the same order (optional)")
    suggest.add_argument("--top-k", type=int, help="print only the best K")
    _add_size_arguments(suggest)
    suggest.add_argument("--device", default="cpu", help="cpu, cuda, … (default: cpu)")
    suggest.set_defaults(run=_suggest)

    dataset = commands.add_parser(
        "translate-dataset",
        help="translate every pair of a PAIRS.csv into a folder (resumable; many GPUs with accelerate launch)",
        description=(
            "Translate the pairs of PAIRS.csv (header structure,exemplar,exemplar_structure[,name]; paths relative to "
            "the CSV's folder or absolute) into OUTPUT/<name>.png (or the row number). Finished images are skipped, so "
            "a stopped run resumes where it was; each image is written to a temporary file and renamed. Rows that "
            "cannot be used and pairs that fail are reported and skipped (exit status 1 when any did). "
            "OUTPUT/manifest.jsonl records every pair's status and seconds. Under `accelerate launch [--num_processes "
            "N] -m pipeline_cocosnet translate-dataset …` the pairs are split between the processes."
        ),
    )
    dataset.add_argument("--model", required=True, help=MODEL_HELP)
    dataset.add_argument("--pairs", required=True, type=Path, help="the PAIRS.csv")
    dataset.add_argument("--output", required=True, type=Path, help="folder for the images (and manifest.jsonl)")
    dataset.add_argument("--batch-size", type=int, default=1, help="pairs per pipeline call (default 1)")
    _add_size_arguments(dataset)
    dataset.add_argument("--warps", action="store_true", help="also write OUTPUT/warps/<name>_level<k>.png")
    dataset.add_argument("--device", help="default: this process's accelerate device (cuda:N under a launcher, else cpu)")
    _add_dtype_argument(dataset, "precision (auto: the device's fastest faithful one, as for translate)")
    dataset.add_argument("--quiet", action="store_true", help="no progress bar")
    dataset.set_defaults(run=_translate_dataset)

    make_pairs = commands.add_parser(
        "make-pairs",
        help="write a PAIRS.csv for translate-dataset: DeepFashionHD, ADE20k, or held-out demo scenes",
        description=(
            "deepfashionhd: --root, --list (test image keys, img/…jpg per line) and --refs (target,exemplar[,…] per "
            "line, the research code's retrieval list) → OUTPUT.csv. ade20k: every mask of --split with the photo of "
            "--gallery-split (default: the same split, never itself) whose class histogram is most similar (cosine) → "
            "OUTPUT.csv. scenes: --count held-out procedural scenes for the demo model → OUTPUT/ (inputs/, real/, "
            "pairs.csv). docs/evaluation.md has the rules."
        ),
    )
    make_pairs.add_argument("dataset", choices=["deepfashionhd", "ade20k", "scenes"])
    make_pairs.add_argument("--output", required=True, type=Path, help="the PAIRS.csv (scenes: a folder)")
    make_pairs.add_argument("--root", type=Path, help="the dataset's root folder")
    make_pairs.add_argument("--list", type=Path, help="deepfashionhd: the test keys")
    make_pairs.add_argument("--refs", type=Path, help="deepfashionhd: the retrieval list")
    make_pairs.add_argument("--split", default="validation", help="ade20k: the split to translate (default validation)")
    make_pairs.add_argument("--gallery-split", help="ade20k: where exemplars come from (default: --split)")
    make_pairs.add_argument("--count", type=int, default=64, help="scenes: how many pairs (default 64)")
    make_pairs.add_argument("--size", type=int, default=128, help="scenes: side in pixels (default 128)")
    make_pairs.set_defaults(run=_make_pairs)

    score = commands.add_parser(
        "evaluate",
        help="score generated images against real ones: SWD, FID, semantic consistency, style relevance",
        description=(
            "Print one line per metric (and with --json a JSON object keyed by metric name). swd: sliced Wasserstein "
            "distance of Laplacian-pyramid patches (×10³, seeded). fid: Inception-v3 Fréchet distance (needs "
            "--inception-weights and torch-fidelity). semantic: VGG19 relu3_2/4_2/5_2 cosine similarity with the real "
            "image of the same name; style: VGG19 relu1_2/2_2 channel mean/std cosine similarity with the exemplar "
            "named in --pairs (both need --vgg-weights). Images are compared at the first generated image's size. "
            "What the real folder yields is cached (huggingface_hub's assets cache). docs/evaluation.md has details."
        ),
    )
    score.add_argument("--generated", required=True, type=Path, help="folder of generated images (e.g. translate-dataset's)")
    score.add_argument("--real", type=Path, help="folder of real images (ground truths named like the generated ones)")
    score.add_argument("--metrics", nargs="+", default=["swd"], choices=["swd", "fid", "semantic", "style"], help="default: swd")
    score.add_argument("--pairs", type=Path, help="the PAIRS.csv the images were made from (style: it names the exemplars)")
    score.add_argument("--inception-weights", type=Path, help="FID's Inception-v3 weights (pt_inception-2015-12-05-6726825d.pth)")
    score.add_argument("--vgg-weights", type=Path, help="VGG19 weights (torchvision's vgg19 .pth or the research code's vgg19_conv.pth)")
    score.add_argument("--json", type=Path, help="also write the results here as JSON")
    score.add_argument("--seed", type=int, default=0, help="SWD's patch positions and directions (default 0)")
    score.add_argument("--batch-size", type=int, default=16, help="images per batch (default 16)")
    score.add_argument("--device", help="default: cuda when available, else cpu")
    score.add_argument("--no-cache", action="store_true", help="do not read or write the real folder's cached features")
    score.set_defaults(run=_evaluate)

    push = commands.add_parser(
        "push",
        help="upload a pipeline folder to the Hugging Face Hub",
        description=(
            "Upload a saved pipeline folder as it is (weights in every variant, model_index.json, model card) to a "
            "Hub model repo; a folder without a model card gets one first."
        ),
    )
    push.add_argument("folder", type=Path, help="pipeline folder (from convert, train or save_pretrained)")
    push.add_argument("repo_id", help="target repo, e.g. your-name/cocosnet-deepfashionhd")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--token", help="Hub token (default: the one saved by `hf auth login`)")
    push.add_argument("--message", help="commit message")
    push.set_defaults(run=_push)

    fetch = commands.add_parser(
        "fetch-release",
        help="download the published checkpoint and convert it into a pipeline folder (cached)",
        description=(
            f"Download the published CoCosNet v2 release (deepfashionhd: DeepFashionHD {RESEARCH_TASK}, 512×512, MIT; a "
            "Google Drive link, fetched with gdown from the 'release' extra, or any http(s) mirror with --url), check "
            "the size and the zip, find *_net_Corr.pth and *_net_G.pth in it, convert them and write a pipeline folder "
            "with a model card. Cached in $COCOSNET_CACHE or huggingface_hub's assets cache: a second call returns at once."
        ),
    )
    fetch.add_argument("release", nargs="?", default="deepfashionhd", help="which release (default: deepfashionhd)")
    fetch.add_argument("--url", help="download from this URL instead (http(s) mirror or Google Drive link)")
    fetch.add_argument("--archive", type=Path, help="use this already downloaded zip instead of downloading")
    fetch.add_argument("--output", type=Path, help="pipeline folder to write (default: in the cache)")
    fetch.add_argument("--variant", choices=["fp16", "bf16"], help="also write half-precision weights (diffusers variant)")
    fetch.add_argument("--push", metavar="REPO_ID", help="then upload the folder to this Hub model repo")
    fetch.add_argument("--private", action="store_true", help="with --push: create the repo as private")
    fetch.add_argument("--token", help="with --push: Hub token (default: the one saved by `hf auth login`)")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    fetch.set_defaults(run=_fetch_release)

    from .training.cli import register_train_command

    register_train_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (ValueError, OSError) as error:
        print(f"cocosnet {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
