"""Model cards written from our own template when a pipeline is saved or pushed."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pipeline import CoCosNetPipeline

TEMPLATE = """---
library_name: pipeline_cocosnet
pipeline_tag: image-to-image
license: {license}
tags:
- cocosnet
- exemplar-based-image-translation
- {task_tag}
---

# CoCosNet v2 — {task}

Exemplar-based image translation with CoCosNet v2 (Zhou et al., *CoCosNet v2: Full-Resolution
Correspondence Learning for Image Translation*, CVPR 2021), packaged with
[pipeline_cocosnet](https://github.com/) .

| | |
|---|---|
| task | {task} |
| resolution | {height}×{width} |
| label encoding | {label_encoding} |
| label channels | {label_channels} |
| correspondence | nef {nef}, {iterations} PatchMatch iterations, τ = {temperature} |
| translator | ngf {ngf} |
| how it was made | {origin} |
| licence | {license} |

## Usage

```python
from pipeline_cocosnet import CoCosNetPipeline

pipe = CoCosNetPipeline.from_pretrained("REPO_OR_FOLDER")
image = pipe(structure, exemplar).images[0]
```

## Citation

```bibtex
@inproceedings{{zhou2021full,
  title={{CoCosNet v2: Full-Resolution Correspondence Learning for Image Translation}},
  author={{Zhou, Xingran and Zhang, Bo and Zhang, Ting and Zhang, Pan and Bao, Jianmin and Chen, Dong and Zhang, Zhongfei and Wen, Fang}},
  booktitle={{CVPR}},
  year={{2021}}
}}
```
"""


def render_model_card(pipe: "CoCosNetPipeline") -> str:
    """The model card text for ``pipe``, filled from its config and components."""
    encoder = pipe.structure_encoder
    encoding = (inspect.getdoc(type(encoder)) or "").split("\n\n")[0].replace("\n", " ") if encoder else "encoded label tensors"
    corr, translator = pipe.correspondence.config, pipe.translator.config
    return TEMPLATE.format(
        task=pipe.config.task or "custom labels",
        task_tag=pipe.config.task or "custom",
        height=pipe.config.resolution[0],
        width=pipe.config.resolution[1],
        label_encoding=encoding,
        label_channels=corr.label_channels,
        nef=corr.nef,
        iterations=corr.iterations,
        temperature=corr.temperature,
        ngf=translator.ngf,
        origin=pipe.config.origin or "not recorded",
        license=pipe.config.license or "other",
    )


def write_model_card(pipe: "CoCosNetPipeline", path: Path) -> None:
    path.write_text(render_model_card(pipe), encoding="utf-8")
