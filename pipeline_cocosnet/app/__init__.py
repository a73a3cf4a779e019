"""The CoCosNet v2 Gradio demo (``python app.py``): build it with :func:`build_demo`, run it with :func:`main`."""

from .cli import build_parser, main
from .ui import API_NAMES, build_demo
from .weights import DEMO_WEIGHTS, TASKS, PipelineStore, WeightsConfig, WeightsUnavailable, env_var

__all__ = [
    "API_NAMES",
    "DEMO_WEIGHTS",
    "TASKS",
    "PipelineStore",
    "WeightsConfig",
    "WeightsUnavailable",
    "build_demo",
    "build_parser",
    "env_var",
    "main",
]
