"""The published release's files as users download them, built from the parity fixture.

``latest_net_Corr.pth`` is packaged as in the release: ``torch.save`` of the state dict,
then ``latest_net_D.pth`` and ``latest_net_G.pth`` appended to that zip archive as extra
top-level entries (Python's ``zipfile`` in mode "a"), which ``torch.load`` refuses.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from pipeline_cocosnet import CoCosNetCorrespondence, CoCosNetTranslator
from pipeline_cocosnet.convert import convert_checkpoints

from .conftest import PARITY


def fixture_state_dicts() -> tuple[dict, dict]:
    """The parity fixture's published-layout state dicts (correspondence, generator)."""
    return load_file(str(PARITY / "official_Corr.safetensors")), load_file(str(PARITY / "official_G.safetensors"))


def write_release_checkpoints(folder: Path, epoch: str = "latest") -> Path:
    """``folder/<epoch>_net_{Corr,G,D}.pth`` with the release's packaging defect in the Corr file; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    corr, generator = fixture_state_dicts()
    corr_path, g_path, d_path = (folder / f"{epoch}_net_{net}.pth" for net in ("Corr", "G", "D"))
    torch.save(corr, corr_path)
    torch.save(generator, g_path)
    torch.save({"scale0.model0.0.weight_orig": torch.zeros(4, 3, 4, 4)}, d_path)  # a stand-in discriminator
    with zipfile.ZipFile(corr_path, "a") as archive:
        archive.write(d_path, d_path.name)
        archive.write(g_path, g_path.name)
    return folder


def assert_published_weights(folder: Path) -> None:
    """The pipeline folder holds exactly the parity fixture's weights, converted (float32)."""
    expected = convert_checkpoints(PARITY / "official_Corr.safetensors", PARITY / "official_G.safetensors")
    loaded = (
        CoCosNetCorrespondence.from_pretrained(folder, subfolder="correspondence"),
        CoCosNetTranslator.from_pretrained(folder, subfolder="translator"),
    )
    for ours, theirs in zip(loaded, expected):
        for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
            assert torch.equal(a, b), name
