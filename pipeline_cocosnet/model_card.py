"""Model cards (``README.md`` of a pipeline folder) through huggingface_hub's ``ModelCard``.

The card's YAML metadata is a :class:`~huggingface_hub.ModelCardData` filled from the
pipeline's config: ``license``, ``library_name``, ``pipeline_tag``, ``tags`` (with the task),
``base_model`` (the Hub pipeline fine-tuned from, when there is one), ``datasets`` (when the
training data is a Hub dataset id) and two keys of ours, ``origin`` (how the weights were made:
converted from the published release, trained by ``cocosnet train``, …) and ``training_data``.
The body is a short table and a usage snippet; it names real places only (the paper, the
authors' repository).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from huggingface_hub import ModelCard, ModelCardData

from .hub import HUB_ID

if TYPE_CHECKING:
    from .pipeline import CoCosNetPipeline

__all__ = ["PAPER_URL", "AUTHORS_REPO_URL", "model_card_data", "model_card", "card_from_parts"]

PAPER_URL = "https://arxiv.org/abs/2012.02047"
AUTHORS_REPO_URL = "https://github.com/microsoft/CoCosNet-v2"
BASE_TAGS = ["cocosnet", "exemplar-based-image-translation"]

CITATION = """```bibtex
@inproceedings{zhou2021full,
  title={CoCosNet v2: Full-Resolution Correspondence Learning for Image Translation},
  author={Zhou, Xingran and Zhang, Bo and Zhang, Ting and Zhang, Pan and Bao, Jianmin and Chen, Dong and Zhang, Zhongfei and Wen, Fang},
  booktitle={CVPR},
  year={2021}
}
```"""


def card_from_parts(data: ModelCardData, body: str) -> ModelCard:
    """A card of ``data`` as YAML front matter followed by the Markdown ``body``."""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body.strip()}\n")


def model_card_data(pipe: "CoCosNetPipeline", extra_tags: tuple[str, ...] = ()) -> ModelCardData:
    """The card metadata of ``pipe`` (see the module docstring for what each key holds)."""
    config = pipe.config
    base_model = str(getattr(config, "base_model", "") or "")
    dataset = str(getattr(config, "dataset", "") or "")
    extra = {key: value for key, value in (("origin", config.origin), ("training_data", dataset)) if value}
    return ModelCardData(
        license=config.license or "other",
        library_name="pipeline_cocosnet",
        pipeline_tag="image-to-image",
        tags=[*BASE_TAGS, config.task or "custom-labels", *extra_tags],
        base_model=base_model if HUB_ID.match(base_model) else None,
        datasets=[dataset] if HUB_ID.match(dataset) else None,
        **extra,
    )


def _label_encoding(pipe: "CoCosNetPipeline") -> str:
    encoder = pipe.structure_encoder
    if encoder is None:
        return "encoded label tensors"
    return (inspect.getdoc(type(encoder)) or "").split("\n\n")[0].replace("\n", " ")


def model_card(pipe: "CoCosNetPipeline") -> ModelCard:
    """The model card of ``pipe``: metadata from its config, a table of its networks, usage, citation."""
    config, corr, translator = pipe.config, pipe.correspondence.config, pipe.translator.config
    task = config.task or "custom labels"
    rows = [
        ("task", task),
        ("resolution", f"{config.resolution[0]}×{config.resolution[1]}"),
        ("label encoding", _label_encoding(pipe)),
        ("label channels", corr.label_channels),
        ("correspondence", f"nef {corr.nef}, {corr.iterations} PatchMatch iterations, τ = {corr.temperature}"),
        ("translator", f"ngf {translator.ngf}"),
        ("how it was made", config.origin or "not recorded"),
        ("training data", getattr(config, "dataset", "") or "not recorded"),
        ("licence", config.license or "other"),
    ]
    table = "\n".join(["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)])
    body = f"""# CoCosNet v2 — {task}

Exemplar-based image translation with CoCosNet v2 (Zhou et al., [*CoCosNet v2: Full-Resolution
Correspondence Learning for Image Translation*]({PAPER_URL}), CVPR 2021; the authors' code:
[{AUTHORS_REPO_URL.removeprefix("https://")}]({AUTHORS_REPO_URL})), as a pipeline of the Python
package `pipeline_cocosnet`.

{table}

## Usage

```python
# pip install pipeline_cocosnet
from pipeline_cocosnet import CoCosNetPipeline

pipe = CoCosNetPipeline.from_pretrained("REPO_OR_FOLDER")
image = pipe(structure, exemplar).images[0]
```

diffusers' generic loader works too (`cocosnet_pipeline.py` beside `model_index.json` only imports
the package above):

```python
from diffusers import DiffusionPipeline

pipe = DiffusionPipeline.from_pretrained("REPO_OR_FOLDER", trust_remote_code=True)
```

## Citation

{CITATION}
"""
    return card_from_parts(model_card_data(pipe), body)
