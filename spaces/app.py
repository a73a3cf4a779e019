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

if __name__ == "__main__":
    args = ["--examples", str(ROOT / "examples")] if (ROOT / "examples").is_dir() else []
    # Spaces route traffic to 0.0.0.0:7860 (GRADIO_SERVER_NAME is set there); keep one translation at a time
    main([*args, "--host", os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"), *sys.argv[1:]])
