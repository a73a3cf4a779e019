"""Hugging Face Space entry point: the project's demo (``pipeline_cocosnet.app``) with the Space's settings.

Works both as the Space's ``app.py`` (``pipeline_cocosnet/`` and ``examples/`` copied beside it)
and from this repository (``python spaces/app.py``). Weights come from the Space variables
``COCOSNET_WEIGHTS_<TASK>``; inference runs under ``spaces.GPU`` where the ``spaces`` package
is installed (ZeroGPU), see ``pipeline_cocosnet.app.ui``.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = next((p for p in (HERE, HERE.parent) if (p / "pipeline_cocosnet").is_dir()), HERE)
sys.path.insert(0, str(ROOT))

from pipeline_cocosnet.app import main  # noqa: E402


def on_space(environ) -> bool:
    """Whether this runs on a Hugging Face Space (its runtime sets SPACE_ID, and SYSTEM=spaces)."""
    return bool(environ.get("SPACE_ID")) or environ.get("SYSTEM") == "spaces"


def server_name(environ) -> str:
    """The address to bind: GRADIO_SERVER_NAME when set, else 0.0.0.0 on a Space and 127.0.0.1 anywhere else."""
    return environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if on_space(environ) else "127.0.0.1")

if __name__ == "__main__":
    args = ["--examples", str(ROOT / "examples")] if (ROOT / "examples").is_dir() else []
    # Spaces route traffic to 0.0.0.0:7860 and say so in their environment (SPACE_ID, SYSTEM=spaces); run
    # anywhere else, the demo stays on this machine (127.0.0.1) unless GRADIO_SERVER_NAME or --host says otherwise
    main([*args, "--host", server_name(os.environ), *sys.argv[1:]])
