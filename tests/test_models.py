"""Whole-network behaviour: shapes at any size, batching, determinism, precision, clear errors."""

from __future__ import annotations

import pytest
import torch

from pipeline_cocosnet import CoCosNetCorrespondence, CoCosNetTranslator
from pipeline_cocosnet.models.layers import SPADE, positional_norm

from .conftest import random_inputs, rounding_bound, tiny_models

CL = 3


@pytest.fixture(scope="module")
def models():
    return tiny_models(label_channels=CL)


def run(models, inputs, generator=None):
    correspondence, translator = models
    with torch.no_grad():
        out = correspondence(*inputs, generator=generator)
        return out, translator(inputs[0], out.warps)


def test_non_square_forward_has_a_level_per_scale(models):
    out, image = run(models, random_inputs(1, CL, 256, 384))
    assert [tuple(w.shape) for w in out.warps] == [(1, 3, 32, 48), (1, 3, 64, 96), (1, 3, 128, 192), (1, 3, 256, 384)]
    assert out.indices.shape == (1, 16, 256, 384)
    assert 0 <= out.indices.min() and out.indices.max() < 256 * 384
    assert [tuple(i.shape) for i in out.level_indices][0] == (1, 1, 32, 48)
    assert image.shape == (1, 3, 256, 384) and image.abs().max() <= 1
    assert all(w.abs().max() <= 1 + 1e-6 for w in out.warps)  # convex combinations of exemplar pixels


def test_batch_of_two_equals_two_batches_of_one():
    # float64: in float32, batched convolutions round differently and PatchMatch amplifies it
    models = tiny_models(CL, dtype=torch.float64)
    a, b = random_inputs(1, CL, 64, 96, seed=1, dtype=torch.float64), random_inputs(1, CL, 64, 96, seed=2, dtype=torch.float64)
    both = tuple(torch.cat([x, y]) for x, y in zip(a, b))
    out_ab, img_ab = run(models, both)
    for i, single in enumerate((a, b)):
        out, img = run(models, single)
        for w_batch, w in zip(out_ab.warps, out.warps):
            torch.testing.assert_close(w_batch[i : i + 1], w, atol=1e-10, rtol=0)
        assert torch.equal(out_ab.indices[i : i + 1], out.indices)
        torch.testing.assert_close(img_ab[i : i + 1], img, atol=1e-10, rtol=0)


def test_same_call_twice_is_identical(models):
    inputs = random_inputs(1, CL, 64, 64)
    (o1, i1), (o2, i2) = run(models, inputs), run(models, inputs)
    assert torch.equal(i1, i2) and torch.equal(o1.indices, o2.indices)


def test_generator_seeded_order_is_reproducible_and_used(models):
    inputs = random_inputs(1, CL, 64, 64)
    o1, _ = run(models, inputs, torch.Generator().manual_seed(7))
    o2, _ = run(models, inputs, torch.Generator().manual_seed(7))
    assert torch.equal(o1.indices, o2.indices)
    default, _ = run(models, inputs)
    others = [run(models, inputs, torch.Generator().manual_seed(s))[0].indices for s in range(4)]
    assert any(not torch.equal(o, default.indices) for o in others)


def test_float64_runs_and_agrees_with_float32_at_the_dense_level():
    inputs = random_inputs(1, CL, 64, 64)
    o32, _ = run(tiny_models(CL), inputs)
    o64, img64 = run(tiny_models(CL, dtype=torch.float64), tuple(x.double() for x in inputs))
    assert img64.dtype == torch.float64
    torch.testing.assert_close(o64.warps[0].float(), o32.warps[0], atol=1e-4, rtol=0)


def test_bfloat16_autocast_keeps_matching_in_float32(models):
    inputs = random_inputs(1, CL, 64, 64)
    correspondence, translator = models
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = correspondence(*inputs)
        image = translator(inputs[0], out.warps)
    assert all(torch.isfinite(w).all() for w in out.warps) and torch.isfinite(image).all()
    reference, _ = run(models, inputs)
    # the dense level only depends on the (bf16) features: close to float32, not bf16-coarse
    assert (out.warps[0].float() - reference.warps[0]).abs().mean() < 0.05


def test_gradients_reach_the_encoders_but_not_the_gru_as_published(models):
    correspondence, translator = tiny_models(CL)
    out = correspondence(*random_inputs(1, CL, 64, 64))
    translator(random_inputs(1, CL, 64, 64)[0], out.warps).mean().backward()
    assert correspondence.structure_aligner.conv_in.weight.grad.abs().sum() > 0
    assert correspondence.theta[3].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in correspondence.patchmatch.parameters())


def test_component_save_and_load_round_trip(tmp_path, models):
    correspondence, translator = models
    correspondence.save_pretrained(tmp_path / "c")
    translator.save_pretrained(tmp_path / "t")
    loaded = CoCosNetCorrespondence.from_pretrained(tmp_path / "c").eval(), CoCosNetTranslator.from_pretrained(tmp_path / "t").eval()
    inputs = random_inputs(1, CL, 64, 64)
    (o1, i1), (o2, i2) = run(models, inputs), run(loaded, inputs)
    assert torch.equal(i1, i2) and torch.equal(o1.indices, o2.indices)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda l, e, r: (l[:, :2], e, r), "label has 2 channels but the model expects 3"),
        (lambda l, e, r: (l, e[:, :1], r), "exemplar has 1 channels but the model expects 3"),
        (lambda l, e, r: (l[..., :48], e[..., :48], r[..., :48]), r"size 64×48 is not supported"),
        (lambda l, e, r: (l, e[..., :32], r), "exemplar is 1×64×32 .* but the structure is 1×64×64"),
        (lambda l, e, r: (l, e, torch.cat([r, r])), "exemplar_label is 2×64×64"),
        (lambda l, e, r: (l[0], e, r), r"label must be B×C×H×W \(4 dimensions\)"),
        (lambda l, e, r: ((l * 255).to(torch.uint8), e, r), "label must be a floating-point tensor"),
    ],
)
def test_bad_inputs_are_named(models, change, message):
    with pytest.raises(ValueError, match=message):
        models[0](*change(*random_inputs(1, CL, 64, 64)))


def test_translator_checks_its_warps(models):
    label = random_inputs(1, CL, 64, 64)[0]
    with pytest.raises(ValueError, match="takes 4 warps"):
        models[1](label, [torch.zeros(1, 3, 8, 8)])
    with pytest.raises(ValueError, match=r"warps\[1\] must be B×3×h×w"):
        models[1](label, [torch.zeros(1, 3, 8, 8), torch.zeros(2, 3, 16, 16), torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 64, 64)])


def test_positional_norm_is_the_per_pixel_channel_standardisation():
    x = torch.randn(2, 7, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3 + 2
    var, mean = x.var(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)  # unbiased variance
    expected = (x - mean) / torch.sqrt(var + 1e-8)
    # sums of 7 channels of values up to ~10, then a division: a few ulps of |expected|'s size
    bound = rounding_bound(torch.float64, 7, magnitude=x.abs().max().item())
    torch.testing.assert_close(positional_norm(x), expected, atol=bound, rtol=0)


def test_spade_modulates_the_positional_norm_with_separate_gamma_and_beta():
    torch.manual_seed(0)
    spade = SPADE(6, 4, hidden=8).double()
    x = torch.randn(1, 6, 8, 10, dtype=torch.float64)
    cond = torch.rand(1, 4, 4, 5, dtype=torch.float64)
    with torch.no_grad():
        actv = torch.relu(spade.mlp_shared(torch.nn.functional.interpolate(cond, size=(8, 10), mode="nearest")))
        expected = positional_norm(x) * (1 + spade.mlp_gamma(actv)) + spade.mlp_beta(actv)  # docs/architecture.md §3
        # the widest sum: a 3×3 convolution of the 8 hidden channels, times the normalised x
        bound = rounding_bound(torch.float64, 9 * 8, magnitude=expected.abs().max().item())
        torch.testing.assert_close(spade(x, cond), expected, atol=bound, rtol=0)


def _with_old_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` as saved before the domain-alignment encoders were called aligners."""
    old = {"structure_aligner.": "structure_encoder.", "exemplar_aligner.": "exemplar_encoder."}
    return {next((o + k[len(n) :] for n, o in old.items() if k.startswith(n)), k): v for k, v in state.items()}


def test_weights_saved_with_the_old_module_names_still_load(tmp_path):
    from safetensors.torch import load_file, save_file

    correspondence, _ = tiny_models(CL)
    correspondence.save_pretrained(tmp_path)
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    save_file(_with_old_names(load_file(path)), path)
    assert any(k.startswith("structure_encoder.") for k in load_file(path))
    loaded = CoCosNetCorrespondence.from_pretrained(tmp_path)  # diffusers' loading path
    fresh, _ = tiny_models(CL, seed=1)
    fresh.load_state_dict(_with_old_names(correspondence.state_dict()))  # torch's (training checkpoints)
    wrapper = torch.nn.ModuleDict({"correspondence": tiny_models(CL, seed=2)[0]})  # under a prefix
    wrapper.load_state_dict({f"correspondence.{k}": v for k, v in _with_old_names(correspondence.state_dict()).items()})
    for model in (loaded, fresh, wrapper["correspondence"]):
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), correspondence.state_dict().values()))
