"""``python -m pipeline_cocosnet.training`` / ``accelerate launch -m pipeline_cocosnet.training``."""

import sys

from .cli import main

sys.exit(main())
