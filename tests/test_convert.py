"""Converting published checkpoints: key mapping, spectral-norm folding, clear errors."""

from __future__ import annotations

import json
import pickle
import zipfile

import pytest
import torch
from safetensors.torch import load_file, save_file

from pipeline_cocosnet import CoCosNetCorrespondence, CoCosNetTranslator
from pipeline_cocosnet.convert import (
    CheckpointError,
    CheckpointWarning,
    convert_checkpoints,
    convert_state_dicts,
    find_checkpoint_pair,
    fold_spectral_norm,
    load_state_dict,
    pick_checkpoint_pair,
)

from .conftest import PARITY


def release_state_dicts(seed: int = 0) -> tuple[dict, dict]:
    """Random tensors in every key and shape of the full release (ngf 64, nef 32, 20 labels)."""
    manifest = json.loads((PARITY / "official_deepfashionHD_keys.json").read_text())
    g = torch.Generator().manual_seed(seed)
    corr = {k: torch.randn(shape, generator=g) for k, shape in manifest["Corr"].items()}
    gen = {k: torch.randn(shape, generator=g) for k, shape in manifest["G"].items()}
    for state in (corr, gen):  # the two names of the one shared PReLU hold one tensor
        for key in [k for k in state if k.endswith(".model.3.weight")]:
            state[key] = state[key.replace(".model.3.weight", ".relu.weight")]
    return corr, gen


@pytest.fixture(scope="module")
def fixture_state_dicts():
    return load_file(str(PARITY / "official_Corr.safetensors")), load_file(str(PARITY / "official_G.safetensors"))


def test_full_release_configuration_converts_and_loads_strictly():
    corr, gen = release_state_dicts()
    correspondence, translator = convert_state_dicts(corr, gen)
    assert correspondence.config.nef == 32 and correspondence.config.label_channels == 20
    assert translator.config.ngf == 64
    manifest = json.loads((PARITY / "official_deepfashionHD_keys.json").read_text())
    # Published counts include weight_orig but not the u/v buffers, and the shared PReLU once.
    assert sum(p.numel() for p in translator.parameters()) == manifest["params_G"]
    assert sum(p.numel() for p in correspondence.parameters()) == manifest["params_Corr"]


def test_spectral_norm_is_folded_with_the_stored_vectors():
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    u, v = torch.randn(4, dtype=torch.float64), torch.randn(27, dtype=torch.float64)
    folded = fold_spectral_norm({"c.weight_orig": w, "c.weight_u": u, "c.weight_v": v, "c.bias": torch.zeros(4)})
    assert set(folded) == {"c.weight", "c.bias"}
    torch.testing.assert_close(folded["c.weight"], w / (u @ w.reshape(4, -1) @ v))


def test_pth_and_safetensors_give_the_same_models(tmp_path, fixture_state_dicts):
    corr, gen = fixture_state_dicts
    torch.save(corr, tmp_path / "latest_net_Corr.pth")
    torch.save(gen, tmp_path / "latest_net_G.pth")
    from_pth = convert_checkpoints(tmp_path / "latest_net_Corr.pth", tmp_path / "latest_net_G.pth")
    from_st = convert_checkpoints(PARITY / "official_Corr.safetensors", PARITY / "official_G.safetensors")
    for a, b in zip(from_pth, from_st):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(x, y), name


def test_converted_folder_loads_per_component(tmp_path):
    convert_checkpoints(PARITY / "official_Corr.safetensors", PARITY / "official_G.safetensors", tmp_path / "out")
    assert (tmp_path / "out" / "correspondence" / "diffusion_pytorch_model.safetensors").is_file()
    correspondence = CoCosNetCorrespondence.from_pretrained(tmp_path / "out", subfolder="correspondence")
    translator = CoCosNetTranslator.from_pretrained(tmp_path / "out", subfolder="translator")
    assert correspondence.config.nef == 8 and translator.config.ngf == 8


def test_widths_are_inferred_and_contradicting_flags_are_named(fixture_state_dicts):
    with pytest.raises(CheckpointError, match=r"--ngf 64 .* ngf = 8"):
        convert_state_dicts(*fixture_state_dicts, ngf=64)


def test_missing_key_is_named(fixture_state_dicts):
    corr, gen = (dict(d) for d in fixture_state_dicts)
    del gen["up_2.conv_1.bias"]
    with pytest.raises(CheckpointError, match=r"missing keys: blocks\.5\.conv_1\.bias"):
        convert_state_dicts(corr, gen)


def test_unknown_key_is_named(fixture_state_dicts):
    corr, gen = (dict(d) for d in fixture_state_dicts)
    corr["extra_head.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"unexpected keys: extra_head\.weight"):
        convert_state_dicts(corr, gen)


def test_misshaped_key_is_named(fixture_state_dicts):
    corr, gen = (dict(d) for d in fixture_state_dicts)
    corr["theta_2.bias"] = torch.zeros(5)
    with pytest.raises(CheckpointError, match=r"mis-shaped keys: theta\.2\.bias: checkpoint \(5,\)"):
        convert_state_dicts(corr, gen)


def test_spectral_norm_without_vectors_is_named(fixture_state_dicts):
    corr, gen = (dict(d) for d in fixture_state_dicts)
    del gen["fc.weight"], gen["head_0.conv_0.weight_u"]
    with pytest.raises(CheckpointError, match=r"fc\.weight|head_0\.conv_0\.weight_orig lacks"):
        convert_state_dicts(corr, gen)


def test_swapped_files_are_reported(fixture_state_dicts):
    corr, gen = fixture_state_dicts
    with pytest.raises(CheckpointError, match="not a CoCosNet v2 checkpoint pair"):
        convert_state_dicts(gen, corr)


def test_corrupt_and_missing_files_are_reported_with_their_path(tmp_path):
    broken = tmp_path / "latest_net_G.pth"
    broken.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*latest_net_G\.pth"):
        load_state_dict(broken)
    truncated = tmp_path / "net.safetensors"
    truncated.write_bytes((PARITY / "official_G.safetensors").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*net\.safetensors"):
        load_state_dict(truncated)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_state_dict(tmp_path / "absent.pth")


class _Payload:
    def __reduce__(self):  # would run code if unpickled without weights_only
        return (print, ("unpickled!",))


def test_pickles_with_arbitrary_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"fc.weight": torch.zeros(1), "x": _Payload()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_state_dict(path)


def test_non_tensor_content_is_refused(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointError, match="does not hold a state dict of tensors"):
        load_state_dict(path)


def test_shared_prelu_copies_must_agree(fixture_state_dicts):
    corr, gen = (dict(d) for d in fixture_state_dicts)
    corr["adaptive_model_seg.layer3.1.model.3.weight"] = corr["adaptive_model_seg.layer3.1.relu.weight"] + 1
    with pytest.raises(CheckpointError, match="shared PReLU"):
        convert_state_dicts(corr, gen)


def test_safetensors_round_trip_of_raw_state_dicts(tmp_path, fixture_state_dicts):
    corr, gen = fixture_state_dicts
    save_file(corr, str(tmp_path / "c.safetensors"))
    assert load_state_dict(tmp_path / "c.safetensors").keys() == corr.keys()


# ---------------------------------------------------------------- the release's files as downloaded


def test_archive_with_foreign_entries_is_read_with_a_warning_naming_them(tmp_path):
    from .release_files import write_release_checkpoints

    folder = write_release_checkpoints(tmp_path / "deepfashionHD")
    with pytest.raises(RuntimeError, match="not in a subdirectory"):  # what torch.load alone does
        torch.load(folder / "latest_net_Corr.pth", weights_only=True)
    with pytest.warns(CheckpointWarning, match=r"ignored 2 other entries .*latest_net_D\.pth, latest_net_G\.pth"):
        state = load_state_dict(folder / "latest_net_Corr.pth")
    expected = load_file(str(PARITY / "official_Corr.safetensors"))
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in expected)


def test_foreign_entries_are_never_unpickled(tmp_path):
    path = tmp_path / "latest_net_Corr.pth"
    torch.save({"fc.weight": torch.zeros(2)}, path)
    torch.save({"x": _Payload()}, tmp_path / "evil.pth", pickle_module=pickle)
    with zipfile.ZipFile(path, "a") as archive:
        archive.write(tmp_path / "evil.pth", "latest_net_D.pth")
    with pytest.warns(CheckpointWarning, match="latest_net_D.pth"):
        assert list(load_state_dict(path)) == ["fc.weight"]


def test_legacy_files_and_data_parallel_prefixes_are_read(tmp_path):
    state = {"module.fc.weight": torch.randn(3, 2), "module.fc.bias": torch.randn(3)}
    torch.save(state, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    loaded = load_state_dict(tmp_path / "legacy.pth")
    assert list(loaded) == ["fc.weight", "fc.bias"] and torch.equal(loaded["fc.bias"], state["module.fc.bias"])


def test_truncated_archive_is_one_line_naming_the_file(tmp_path):
    from .release_files import write_release_checkpoints

    folder = write_release_checkpoints(tmp_path / "ck")
    data = (folder / "latest_net_G.pth").read_bytes()
    (tmp_path / "cut_net_G.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*cut_net_G\.pth: the zip archive is truncated") as error:
        load_state_dict(tmp_path / "cut_net_G.pth")
    assert "\n" not in str(error.value)
    corrupt = bytearray(data)
    corrupt[len(data) // 3 : len(data) // 3 + 64] = bytes(64)  # inside a tensor record: the CRC no longer matches
    (tmp_path / "bad_net_Corr.pth").write_bytes(bytes((folder / "latest_net_Corr.pth").read_bytes()[:200]) + bytes(corrupt[200:]))
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*bad_net_Corr\.pth") as error:
        load_state_dict(tmp_path / "bad_net_Corr.pth")
    assert "\n" not in str(error.value)


def test_checkpoint_pair_is_found_in_the_research_layout(tmp_path):
    names = ["latest_net_Corr.pth", "latest_net_G.pth", "latest_net_D.pth", "10_net_Corr.pth", "10_net_G.pth", "20_net_G.pth"]
    assert pick_checkpoint_pair(names) == ("latest_net_Corr.pth", "latest_net_G.pth")
    assert pick_checkpoint_pair(names, "10") == ("10_net_Corr.pth", "10_net_G.pth")
    assert pick_checkpoint_pair(names[3:]) == ("10_net_Corr.pth", "10_net_G.pth")  # no latest_: the highest complete epoch
    with pytest.raises(CheckpointError, match=r"no 20_net_Corr\.pth \+ 20_net_G\.pth pair \(complete epochs: 10, latest"):
        pick_checkpoint_pair(names, "20")
    with pytest.raises(CheckpointError, match=r"found only latest_net_D\.pth"):
        pick_checkpoint_pair(["latest_net_D.pth"])
    with pytest.raises(CheckpointError, match="several latest checkpoint pairs"):
        pick_checkpoint_pair(["a/latest_net_Corr.pth", "a/latest_net_G.pth", "b/latest_net_Corr.pth", "b/latest_net_G.pth"])
    (tmp_path / "deepfashionHD").mkdir()
    for name in names[:3]:
        (tmp_path / "deepfashionHD" / name).touch()
    assert find_checkpoint_pair(tmp_path) == (
        tmp_path / "deepfashionHD" / "latest_net_Corr.pth", tmp_path / "deepfashionHD" / "latest_net_G.pth"
    )  # fmt: skip
    with pytest.raises(CheckpointError, match="no such folder"):
        find_checkpoint_pair(tmp_path / "absent")
