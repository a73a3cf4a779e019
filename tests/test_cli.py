"""The ``cocosnet`` entry point, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys

from pipeline_cocosnet import CoCosNetCorrespondence, CoCosNetTranslator

from .conftest import PARITY


def cocosnet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline_cocosnet", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_the_commands():
    result = cocosnet("--help")
    assert result.returncode == 0
    assert "convert" in result.stdout


def test_convert_writes_loadable_components(tmp_path):
    result = cocosnet(
        "convert",
        "--corr", str(PARITY / "official_Corr.safetensors"),
        "--translator", str(PARITY / "official_G.safetensors"),
        "--output", str(tmp_path / "model"),
        "--ngf", "8",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "nef 8, ngf 8" in result.stdout
    assert CoCosNetCorrespondence.from_pretrained(tmp_path / "model", subfolder="correspondence").config.nef == 8
    assert CoCosNetTranslator.from_pretrained(tmp_path / "model", subfolder="translator").config.ngf == 8


def test_convert_errors_are_one_clear_line(tmp_path):
    result = cocosnet(
        "convert", "--corr", str(tmp_path / "missing.pth"), "--translator", str(PARITY / "official_G.safetensors"),
        "--output", str(tmp_path / "model"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "checkpoint not found" in result.stderr and "Traceback" not in result.stderr
