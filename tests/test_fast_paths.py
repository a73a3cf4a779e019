"""The fast paths compute exactly what the straightforward ones do (float64).

The straightforward reference (pipeline_cocosnet/reference/naive.py, also the benchmark's baseline) scores
candidates one at a time over whole feature maps and builds the full N×N attention.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline_cocosnet.reference.naive import naive_copy, per_candidate_scores, plain_layers, unchunked_dense_correspondence
from pipeline_cocosnet.models.attention import dense_correspondence
from pipeline_cocosnet.models.layers import ACTIVATIONS, conv2d_activation, instance_norm, instance_statistics, normalize_channels
from pipeline_cocosnet.models import fused_search, patchmatch
from pipeline_cocosnet.models.matching import (
    candidate_scores_gathered,
    candidate_scores_sampled,
    indices_to_offsets,
    match_scores,
    offsets_to_indices,
)
from pipeline_cocosnet.models.patchmatch import HORIZONTAL, VERTICAL, PatchMatch, neighbour_indices, propagate
from pipeline_cocosnet.models.update import SepConvGRU

from .conftest import random_inputs, rounding_bound, tiny_models

H, W = 16, 24  # non-square
C = 8  # matching channels of ``features``: unit-norm vectors, so |⟨θ, φ⟩| ≤ Σ_c |θ_c φ_c| ≤ 1
TAU = 0.01  # the softmax temperature: a score's rounding reaches the probabilities ×1/τ
# the widest reduction in the tiny models (a 3×3 convolution of SPADE's 128 hidden channels), its
# rounding amplified ×1/τ where it reaches the matching softmax
NETWORK_BOUND = rounding_bound(torch.float64, terms=9 * 128, magnitude=1 / TAU)


def features(batch: int, channels: int = 8, seed: int = 0, size: tuple[int, int] = (H, W)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return normalize_channels(torch.randn(batch, channels, *size, generator=g, dtype=torch.float64), center=True)


def pixel_major(x: torch.Tensor) -> torch.Tensor:
    """B×K×h×w (the straightforward layout) → B×h×w×K (the model's candidate layout)."""
    return x.permute(0, 2, 3, 1)


@pytest.mark.parametrize("chunk_elements", [1, 1000, 1 << 22])
def test_chunked_candidate_scores_equal_per_candidate_scores(chunk_elements):
    theta, phi = features(2, seed=0), features(2, seed=1)
    index = torch.randint(0, H * W, (2, 48, H, W), generator=torch.Generator().manual_seed(2))
    fast = match_scores(theta, phi, pixel_major(index), chunk_elements=chunk_elements)
    expected = pixel_major(per_candidate_scores(theta, phi, index))
    torch.testing.assert_close(fast, expected, atol=rounding_bound(torch.float64, C), rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sampled_and_gathered_candidate_scores_agree(dtype):
    # CPU inference scores with torch.sparse.sampled_addmm, autograd and other devices by gather + bmm
    g = torch.Generator().manual_seed(3)
    query, table = torch.randn(700, 32, generator=g, dtype=dtype), torch.randn(500, 32, generator=g, dtype=dtype)
    rows = torch.randint(0, 500, (700, 48), generator=g)
    rows[:, 1] = rows[:, 0]  # repeated candidates, as at clamped borders
    # two summation orders of 32 products (the kernels differ per CPU: AVX2, AVX-512, AMX)
    tolerance = rounding_bound(dtype, 32, magnitude=(query.abs().max() * table.abs().max()).item())
    sampled = candidate_scores_sampled(query, table, rows, chunk_elements=1000)
    gathered = candidate_scores_gathered(query, table, rows, chunk_elements=1000, differentiable=False)
    assert torch.isfinite(sampled).all()
    torch.testing.assert_close(sampled, gathered, atol=tolerance, rtol=0)
    plain = (table[rows] * query[:, None]).sum(-1)  # the docstring's equation
    torch.testing.assert_close(sampled, plain, atol=tolerance, rtol=0)


def test_batch_items_never_mix_in_candidate_scoring():
    theta, phi = features(2, seed=0), features(2, seed=1)
    index = torch.randint(0, H * W, (2, H, W, 16), generator=torch.Generator().manual_seed(2))
    together = match_scores(theta, phi, index, chunk_elements=500)
    alone = match_scores(theta[1:], phi[1:], index[1:], chunk_elements=500)
    torch.testing.assert_close(together[1:], alone, atol=rounding_bound(torch.float64, C), rtol=0)


@pytest.mark.parametrize("dim", [HORIZONTAL, VERTICAL])
def test_integer_neighbour_candidates_equal_the_float_index_rule(dim):
    # every index, including the exemplar's border rows and columns where the shift clamps
    index = torch.randint(0, H * W, (2, H, W, 16), generator=torch.Generator().manual_seed(7))
    index[..., 0] = torch.arange(H * W).view(H, W)
    index[0, :, :, 1], index[0, :, :, 2] = W - 1, (H - 1) * W
    by_floats = offsets_to_indices(propagate(indices_to_offsets(index, torch.float64), dim))
    expected = torch.cat([by_floats[..., :16], by_floats[..., 32:]], dim=-1)  # without the own 16
    assert torch.equal(neighbour_indices(index, dim), expected)


@pytest.mark.parametrize("horizontal_first", [True, False])
def test_search_reusing_the_own_scores_equals_scoring_all_candidates(horizontal_first, monkeypatch):
    torch.manual_seed(0)
    module = PatchMatch(feature_channels=8).double()
    theta, phi = features(2, seed=8), features(2, seed=9)
    offsets = torch.randint(-6, 7, (2, H, W, 2, 16), generator=torch.Generator().manual_seed(10)).double()
    offsets += torch.rand(offsets.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    monkeypatch.setattr(fused_search, "available", lambda *args: False)  # the tensor path's own shortcut
    reused = module.search(theta, phi, offsets, horizontal_first)
    monkeypatch.setattr(patchmatch, "exact_index_arithmetic", lambda *args: False)  # the literal float path
    literal = module.search(theta, phi, offsets, horizontal_first)
    assert torch.equal(reused[0], literal[0])
    torch.testing.assert_close(reused[1], literal[1], atol=rounding_bound(torch.float64, C, magnitude=1 / TAU), rtol=0)


def tensor_path_search(module: PatchMatch, *args) -> tuple[torch.Tensor, torch.Tensor]:
    """``PatchMatch.search`` as tensor operations (what runs on other devices), the fused step switched off."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fused_search, "available", lambda *a: False)
        return module.search(*args)


def search_inputs(dtype: torch.dtype, batch: int = 2, size: tuple[int, int] = (H, W), seed: int = 8):
    """θ, φ and fractional offsets reaching past every border (clamped candidates, repeated indices)."""
    theta, phi = (features(batch, seed=seed + i, size=size).to(dtype) for i in range(2))
    g = torch.Generator().manual_seed(seed + 2)
    offsets = torch.randint(-6, 7, (batch, *size, 2, 16), generator=g).to(dtype)
    offsets += torch.rand(offsets.shape, generator=g, dtype=dtype)
    offsets[0, :, :, :, :4] = 0  # the own position: candidates repeat, scores tie exactly
    return theta, phi, offsets


@pytest.mark.skipif(not fused_search.numba_installed(), reason="numba not installed")
@pytest.mark.parametrize("horizontal_first", [True, False])
@pytest.mark.parametrize("size", [(H, W), (W, H), (1, 7)], ids=["wide", "tall", "one-row"])
def test_fused_search_step_equals_the_tensor_operations(horizontal_first, size):
    # the plain equations (fused_search's docstring) as tensor ops vs one pass per pixel: float64, exactly
    module = PatchMatch(feature_channels=C).double()
    theta, phi, offsets = search_inputs(torch.float64, size=size)
    assert fused_search.available(theta, offsets)
    fused = module.search(theta, phi, offsets, horizontal_first)
    plain = tensor_path_search(module, theta, phi, offsets, horizontal_first)
    assert torch.equal(fused[0], plain[0])  # the same candidates kept, in the same order
    torch.testing.assert_close(fused[1], plain[1], atol=rounding_bound(torch.float64, C, magnitude=1 / TAU), rtol=0)


@pytest.mark.skipif(not fused_search.numba_installed(), reason="numba not installed")
def test_fused_search_step_in_float32_differs_only_where_scores_tie_within_rounding():
    module = PatchMatch(feature_channels=C)
    theta, phi, offsets = search_inputs(torch.float32, size=(48, 64))
    fused = module.search(theta, phi, offsets, True)
    plain = tensor_path_search(module, theta, phi, offsets, True)
    assert (fused[0] != plain[0]).any(dim=(-1, -2)).float().mean() < 0.01  # a pixel's ranking may flip on a near-tie
    same = (fused[0] == plain[0]).all(dim=-2).all(dim=-1)
    torch.testing.assert_close(fused[1][same], plain[1][same], atol=rounding_bound(torch.float32, C, magnitude=1 / TAU), rtol=0)


@pytest.mark.skipif(not fused_search.numba_installed(), reason="numba not installed")
def test_fused_search_step_leaves_torchs_thread_count_as_it_was():
    # Numba's OpenMP launch used to reset the process-wide count to every core
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        PatchMatch(feature_channels=C).search(*search_inputs(torch.float32), True)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not fused_search.numba_installed(), reason="numba not installed")
def test_fused_keep_best_ranks_by_score_and_breaks_ties_by_position():
    from pipeline_cocosnet.models.search_kernels import LANES, keep_best

    g = torch.Generator().manual_seed(12)
    for dtype in (torch.float64, torch.float32):
        for n, k in [(48, 16), (12, 4), (27, 9), (75, 25)]:  # whole vectors of LANES and partial ones
            scores = torch.randint(0, 6, (300, n), generator=g).to(dtype) / 5  # many exact ties
            scores[::7] = torch.rand(len(scores[::7]), n, generator=g, dtype=dtype)  # and rows with none
            padded = -(-n // LANES) * LANES
            row, rank = torch.zeros(padded, dtype=dtype).numpy(), torch.empty(padded, dtype=torch.int32).numpy()
            kept = torch.empty(300, k + 1, dtype=torch.int64)
            for values, out in zip(scores.numpy(), kept.numpy()):
                row[:n] = values
                keep_best(row, n, rank, out)
            expected = torch.sort(scores, dim=-1, descending=True, stable=True).indices[:, :k]
            assert torch.equal(kept[:, :k], expected), (dtype, n, k)


@pytest.mark.skipif(not fused_search.numba_installed(), reason="numba not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_softmax_exponentials_are_exp_to_an_ulp_and_zero_below_the_underflow(dtype):
    import numba

    from pipeline_cocosnet.models.search_kernels import LANES, exponentials

    @numba.njit
    def run(values, underflow):
        exponentials(values, underflow)

    underflow = dtype(np.log(np.finfo(dtype).smallest_subnormal) - 1)  # as fused_search passes it
    x = np.concatenate([np.linspace(-120, 0, 300_000), [underflow, np.nextafter(underflow, 0), -1e-30, 0.0]])
    x = np.concatenate([x, np.zeros(-len(x) % LANES)]).astype(dtype)
    y = x.copy()
    run(y, underflow)
    exact = np.exp(x.astype(np.longdouble))
    assert (y[x <= underflow] == 0).all()
    above = x > underflow
    # within one unit in the last place of the dtype (subnormal results: of the smallest subnormal)
    ulp = np.spacing(np.maximum(exact[above], np.finfo(dtype).tiny).astype(dtype)).astype(np.longdouble)
    assert (np.abs(y[above].astype(np.longdouble) - exact[above]) <= ulp).all()


@pytest.mark.parametrize("chunk_elements", [H * W * 2, 3 * H * W * 2 + 5, 1 << 24])
def test_chunked_dense_level_equals_the_full_attention_matrix(chunk_elements):
    theta, phi = features(2, seed=3), features(2, seed=4)
    exemplar = torch.rand(2, 3, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) * 2 - 1
    warp, index = dense_correspondence(theta, phi, exemplar, 0.01, chunk_elements=chunk_elements)
    full_warp, full_index = unchunked_dense_correspondence(theta, phi, exemplar, 0.01)
    # scores (C terms, ×1/τ in the softmax), then a weighted sum of H·W exemplar values in [-1, 1]
    bound = rounding_bound(torch.float64, C, magnitude=1 / TAU) + rounding_bound(torch.float64, H * W)
    torch.testing.assert_close(warp, full_warp, atol=bound, rtol=0)
    assert torch.equal(index, full_index)


def test_the_whole_correspondence_equals_its_straightforward_twin():
    correspondence, _ = tiny_models(4, dtype=torch.float64)
    twin = naive_copy(correspondence)
    inputs = random_inputs(2, 4, 64, 96, dtype=torch.float64)
    with torch.no_grad():
        fast, naive = correspondence(*inputs), twin(*inputs)
    for level, (a, b) in enumerate(zip(fast.level_indices, naive.level_indices)):
        assert torch.equal(a, b), f"level {level} indices differ"
    for a, b in zip(fast.warps, naive.warps):
        torch.testing.assert_close(a, b, atol=NETWORK_BOUND, rtol=0)


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "autograd"])
def test_fused_gru_equals_the_plain_gate_equations(grad):
    gru = SepConvGRU(8, 12).double()
    plain = plain_layers(copy.deepcopy(gru))
    g = torch.Generator().manual_seed(6)
    h, x = torch.randn(1, 8, H, W, generator=g, dtype=torch.float64), torch.randn(1, 12, H, W, generator=g, dtype=torch.float64)
    with torch.set_grad_enabled(grad):  # in place at inference, rebuilt under autograd
        # one 1×5 / 5×1 convolution of the 20 input channels per gate, |h|, |x| ≲ 5, weights ≲ 1
        bound = rounding_bound(torch.float64, 5 * 20, magnitude=max(h.abs().max(), x.abs().max()).item())
        torch.testing.assert_close(gru(h, x), plain(h, x), atol=bound, rtol=0)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("channels_last", [True, False], ids=["NHWC", "NCHW"])
def test_convolution_with_its_activation_fused_equals_the_two_ops(activation, dtype, channels_last):
    # CPU inference: one oneDNN convolution with the activation as a post-op (on the float32 accumulator)
    g = torch.Generator().manual_seed(13)
    x = torch.randn(2, 12, H, W, generator=g)
    weight, bias = torch.randn(8, 12, 3, 5, generator=g) / 6, torch.randn(8, generator=g)
    expected = ACTIVATIONS[activation](F.conv2d(x.double(), weight.double(), bias.double(), padding=(1, 2)))
    x, weight, bias = x.to(dtype), weight.to(dtype), bias.to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        out = conv2d_activation(x, weight, bias, (1, 2), activation)
    assert out.dtype == dtype and out.shape == expected.shape
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
    # 180 products of |x|·|w| ≲ 4·1 each; bf16 rounds the inputs and the output (2⁻⁸ of |y|, |y| ≲ 20 before σ/tanh)
    bound = rounding_bound(torch.float32, 180, magnitude=4.0) if dtype == torch.float32 else 20 * 2**-7
    torch.testing.assert_close(out.double(), expected, atol=bound, rtol=0)
    two_ops = ACTIVATIONS[activation](F.conv2d(x, weight, bias, padding=(1, 2)))  # what runs elsewhere
    torch.testing.assert_close(out.double(), two_ops.double(), atol=2 * bound, rtol=0)


def test_fused_gru_equals_the_plain_gate_equations_in_float32_inference():
    # float32 on CPU takes the oneDNN post-op path (float64 above takes the plain ops)
    gru = SepConvGRU(8, 12)
    plain = plain_layers(copy.deepcopy(gru))
    g = torch.Generator().manual_seed(6)
    h, x = torch.randn(1, 8, H, W, generator=g), torch.randn(1, 12, H, W, generator=g)
    with torch.no_grad():
        bound = rounding_bound(torch.float32, 5 * 20, magnitude=max(h.abs().max(), x.abs().max()).item())
        torch.testing.assert_close(gru(h, x), plain(h, x), atol=bound, rtol=0)


def test_spade_layer_norm_and_fused_modulation_equal_the_plain_equations():
    correspondence, translator = tiny_models(4, dtype=torch.float64)
    inputs = random_inputs(1, 4, 64, 64, dtype=torch.float64)
    plain = plain_layers(copy.deepcopy(translator))
    warps = correspondence(*inputs).warps
    with torch.no_grad():
        torch.testing.assert_close(translator(inputs[0], warps), plain(inputs[0], warps), atol=NETWORK_BOUND, rtol=0)


# bf16: F.instance_norm itself is 0.05 off the exact result on these offset inputs (measured)
@pytest.mark.parametrize(
    "dtype, tolerance", [(torch.float32, 1e-5), (torch.bfloat16, 6e-2)], ids=["float32", "bfloat16"]
)
@pytest.mark.parametrize("batch", [1, 3])
def test_channels_last_instance_norm_equals_the_plain_equation(dtype, tolerance, batch):
    # (x − mean_hw) / sqrt(biased var_hw + eps) per sample and channel, on offset inputs (the hard case)
    g = torch.Generator().manual_seed(7)
    x = (torch.randn(batch, 6, H, W, generator=g) * 3 + 40).to(dtype).contiguous(memory_format=torch.channels_last)
    x64 = x.double()  # the equation, exactly, on the values given
    var, mean = x64.var(dim=(2, 3), keepdim=True, correction=0), x64.mean(dim=(2, 3), keepdim=True)
    expected = (x64 - mean) / torch.sqrt(var + 1e-5)
    out = instance_norm(x)
    assert out.dtype == dtype and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out.double(), expected, atol=tolerance, rtol=0)
    torch.testing.assert_close(out, F.instance_norm(x.contiguous(), eps=1e-5), atol=tolerance, rtol=0)


@pytest.mark.parametrize("chunk_elements", [1, 64, 1 << 18], ids=["chunk-per-position", "many-chunks", "one-chunk"])
def test_chunked_instance_statistics_equal_var_mean(chunk_elements):
    # mean_hw and the biased var_hw per sample and channel, the second pass over chunks of positions
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(2, 5, 24, 20, generator=g) * 3 + 40).contiguous(memory_format=torch.channels_last)
    var, mean = instance_statistics(x, chunk_elements)
    expected_var, expected_mean = torch.var_mean(x.double(), dim=(2, 3), keepdim=True, correction=0)
    assert var.dtype == mean.dtype == torch.float32 and var.shape == mean.shape == (2, 5, 1, 1)
    eps = torch.finfo(torch.float32).eps  # a few roundings of values ~40 (mean) and ~9 (variance)
    torch.testing.assert_close(mean.double(), expected_mean, atol=8 * eps * 40, rtol=0)
    torch.testing.assert_close(var.double(), expected_var, atol=16 * eps * 9, rtol=0)


def test_channels_last_changes_no_stable_output():
    """NHWC convolutions: the dense level and the translator agree with NCHW to float32 rounding.

    (Levels 1–3 are not compared in float32: PatchMatch on truncated fractional offsets
    amplifies any rounding difference — see the README's precision notes.)
    """
    correspondence, translator = tiny_models(4)
    inputs = random_inputs(1, 4, 64, 64)
    with torch.no_grad():
        reference = correspondence(*inputs)
        image = translator(inputs[0], reference.warps)
        correspondence.to(memory_format=torch.channels_last)
        translator.to(memory_format=torch.channels_last)
        fast = correspondence(*inputs)
        fast_image = translator(inputs[0], reference.warps)
    # the softmax at τ = 0.01 scales feature rounding (~1e-7) by 100
    torch.testing.assert_close(fast.warps[0], reference.warps[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(fast_image, image, atol=1e-5, rtol=0)


def test_candidate_scores_are_differentiable_for_training():
    theta, phi = features(1, seed=0).requires_grad_(), features(1, seed=1).requires_grad_()
    index = torch.randint(0, H * W, (1, 16, H, W), generator=torch.Generator().manual_seed(2))
    match_scores(theta, phi, pixel_major(index), chunk_elements=1000).sum().backward()
    reference = [t.detach().requires_grad_() for t in (theta, phi)]
    per_candidate_scores(*reference, index).sum().backward()
    # ∂/∂φ(q) sums φ's share over every (pixel, candidate) that picked q: up to H·W·16 terms, each ≤ 1
    bound = rounding_bound(torch.float64, H * W * 16)
    torch.testing.assert_close(theta.grad, reference[0].grad, atol=bound, rtol=0)
    torch.testing.assert_close(phi.grad, reference[1].grad, atol=bound, rtol=0)


@pytest.mark.parametrize("activation", [None, "relu", "tanh"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("size", [(2, 2), (5, 7), (16, 12)])
@pytest.mark.parametrize("strips", [True, False], ids=["strips", "padded-copy"])
def test_reflect_conv_without_the_padded_copy_equals_the_plain_equation(activation, dtype, size, strips, monkeypatch):
    # act(conv(pad_reflect(x))): the zero-padded convolution with its four border lines recomputed
    # (on maps this small only when the size threshold is lowered), or the padded copy convolved
    from pipeline_cocosnet.models import layers
    from pipeline_cocosnet.models.layers import ACTIVATIONS, reflect_conv2d

    monkeypatch.setattr(layers, "REFLECT_STRIPS_MIN_SIDE", {dtype: 0 if strips else 10**9})

    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, 6, *size, generator=g).to(dtype).contiguous(memory_format=torch.channels_last)
    weight, bias = (torch.randn(5, 6, 3, 3, generator=g) / 4).to(dtype), torch.randn(5, generator=g).to(dtype)
    with torch.no_grad():
        out = reflect_conv2d(x, weight, bias, activation)
        plain = F.conv2d(F.pad(x.double(), (1, 1, 1, 1), mode="reflect"), weight.double(), bias.double())
    plain = plain if activation is None else ACTIVATIONS[activation](plain)
    assert out.dtype == dtype and out.shape == (2, 5, *size)
    # 54 products of |x|·|w| ≲ 3·0.75 summed in float32 (both paths accumulate in float32), and in bf16 the
    # output rounded once more (x and the weights are the same bf16 values on both sides)
    bound = 54 * 3 * 0.75 * torch.finfo(torch.float32).eps
    if dtype == torch.bfloat16:
        bound += torch.finfo(dtype).eps * plain.abs().max().item()
    torch.testing.assert_close(out.double(), plain, atol=bound, rtol=0)
    zero_padded = F.conv2d(x.double(), weight.double(), bias.double(), padding=1)  # exact inside, not on the border
    zero_padded = zero_padded if activation is None else ACTIVATIONS[activation](zero_padded)
    torch.testing.assert_close(zero_padded[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1])
    assert (zero_padded - plain).abs().amax() > 10 * bound  # so the border lines had to be recomputed
