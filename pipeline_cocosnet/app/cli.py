"""``python app.py``: the demo's command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..tasks import TASKS as TASK_REGISTRY
from .weights import TASKS, WeightsConfig, env_var, parse_weights_args, read_config_file

__all__ = ["build_parser", "main"]


def _defaults() -> str:
    """What each tab falls back to when no weights are configured (its task's ``weights``), in words."""
    said = [
        f"{task.name} falls back to the packaged {task.weights.default} weights (trained on procedural scenes)"
        if task.weights.default else f"{task.name} uses the {task.weights.shared_with} weights"
        for task in TASK_REGISTRY.values() if task.weights.default or task.weights.shared_with
    ]  # fmt: skip
    return " and ".join(said)


def build_parser() -> argparse.ArgumentParser:
    demo_tabs = [task.name for task in TASK_REGISTRY.values() if task.weights.default]
    parser = argparse.ArgumentParser(
        prog="app.py",
        description=(
            f"CoCosNet v2 web demo, one tab per task: {', '.join(TASKS)}. Weights per tab come "
            f"from --weights, the environment ({', '.join(env_var(t) for t in TASKS)}) or --config, in that order; "
            f"without any, {_defaults()}. Tabs without weights still open and explain how to get them."
        ),
    )
    parser.add_argument(
        "--weights", action="append", default=[], metavar="TASK=PATH_OR_HUB_ID",
        help=f"weights of one tab (repeatable); TASK one of {', '.join(TASKS)}; a pipeline folder or a Hub repo id",
    )
    parser.add_argument(
        "--config", type=Path, default=os.environ.get("COCOSNET_APP_CONFIG"),
        help="TOML/YAML file with a [weights] table (TASK = PATH_OR_HUB_ID) and optional device, dtype, concurrency, "
        "examples (default: $COCOSNET_APP_CONFIG)",
    )
    parser.add_argument("--host", default=None, help="address to serve on (default: 127.0.0.1, or $GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, default=None, help="port (default: 7860 or the next free one, or $GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="also serve through a temporary public gradio.live link")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, … (default: auto, CUDA when available)")
    parser.add_argument(
        "--dtype", choices=["auto", "float32", "float16", "bfloat16"], default=None,
        help="weights dtype (default auto: bfloat16 on CPUs with AMX or AVX512-BF16, float32 elsewhere)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=None,
        help="translations run at the same time per tab (default: 1; each holds a model's activations in memory)",
    )
    parser.add_argument("--queue-size", type=int, default=32, help="requests that may wait in the queue (default: 32)")
    parser.add_argument("--examples", type=Path, default=None, help="examples folder (default: the checkout's examples/)")
    parser.add_argument(
        "--mcp", action="store_true",
        help="also serve the four Translate endpoints as MCP tools (Gradio's MCP server, at /gradio_api/mcp/; "
        "needs the mcp extra: pip install 'pipeline_cocosnet[mcp]')",
    )
    parser.add_argument("--no-demo-weights", action="store_true", help=f"do not fall back to the demo weights for {', '.join(demo_tabs)}")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, build the demo and serve it until interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        file_config = read_config_file(args.config) if args.config else {}
        weights = parse_weights_args(args.weights)
    except ValueError as error:
        parser.error(str(error))
    if args.mcp:
        try:
            import mcp  # noqa: F401 - Gradio's MCP server needs it
        except ImportError:
            parser.error("--mcp needs the mcp package: pip install 'pipeline_cocosnet[mcp]' (or 'gradio[mcp]')")
    import logging

    from .ui import build_demo

    # user errors are logged as one line each by pipeline_cocosnet.app.ui (tracebacks only for unexpected exceptions)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .weights import PipelineStore

    config = WeightsConfig.resolve(weights, file_config.get("weights"), demo_default=not args.no_demo_weights)
    from ..precision import describe_dtype, resolve_device, resolve_dtype

    device = resolve_device(args.device or file_config.get("device") or "auto")

    dtype_name = args.dtype or file_config.get("dtype") or "auto"
    try:
        dtype = resolve_dtype(dtype_name, device)
    except ValueError as error:
        parser.error(str(error))
    concurrency = args.concurrency or int(file_config.get("concurrency", 1))
    if concurrency < 1:
        parser.error(f"--concurrency must be at least 1, got {concurrency}")
    examples = args.examples or file_config.get("examples") or "auto"

    from .examples import default_examples_dir

    examples = default_examples_dir() if examples == "auto" else Path(examples)
    store = PipelineStore(config, device=device, dtype=dtype)
    demo = build_demo(store=store, examples_dir=examples)
    print(f"  precision      {describe_dtype(dtype, dtype_name, device)}", file=sys.stderr)
    for task in TASKS:
        print(f"  {task:14s} {config.sources.get(task, '(no weights configured)')}", file=sys.stderr)
    demo.queue(default_concurrency_limit=concurrency, max_size=args.queue_size)
    allowed = [str(examples.resolve())] if examples is not None else []
    demo.launch(
        server_name=args.host, server_port=args.port, share=args.share, max_file_size="25mb", allowed_paths=allowed,
        mcp_server=args.mcp,
    )
