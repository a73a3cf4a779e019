"""PatchMatch level: index arithmetic, propagation, candidate seeding, known correspondences."""

from __future__ import annotations

import pytest
import torch

from pipeline_cocosnet.models.layers import normalize_channels
from pipeline_cocosnet.models.matching import indices_to_offsets, match_scores, offsets_to_indices
from pipeline_cocosnet.models.patchmatch import HORIZONTAL, VERTICAL, PatchMatch, initial_offsets, propagate

H, W = 24, 40  # non-square on purpose


def offsets_at(h: int, w: int, drow: float, dcol: float, k: int = 1) -> torch.Tensor:
    """Pixel-major offsets B×h×w×2×K, the same everywhere."""
    offsets = torch.empty(1, h, w, 2, k, dtype=torch.float64)
    offsets[..., 0, :], offsets[..., 1, :] = drow, dcol
    return offsets


def test_index_is_clamped_per_axis_then_truncated_on_the_combined_value():
    index = offsets_to_indices(offsets_at(H, W, 0.5, 0.2))
    # pixel (2, 3): row 2.5, col 3.2 → 2.5·40 + 3.2 = 103.2 → 103 = (2, 23): the half row spills into columns
    assert index[0, 2, 3, 0].item() == 103
    index = offsets_to_indices(offsets_at(H, W, -5.0, 100.0))
    assert index[0, 2, 3, 0].item() == 0 * W + (W - 1)  # row clamped to 0, col to W−1


def test_indices_and_integer_offsets_round_trip_on_a_non_square_grid():
    g = torch.Generator().manual_seed(0)
    index = torch.randint(0, H * W, (2, H, W, 3), generator=g)
    assert torch.equal(offsets_to_indices(indices_to_offsets(index, torch.float64)), index)


def numbered_offsets() -> torch.Tensor:
    """B×h×w×2×1 offsets whose value is the pixel's flat position (to see where they move)."""
    return torch.arange(H * W, dtype=torch.float64).view(1, H, W, 1, 1).expand(1, H, W, 2, 1)


def test_horizontal_propagation_takes_left_own_right_offsets_with_zero_borders():
    out = propagate(numbered_offsets(), HORIZONTAL)
    assert out.shape == (1, H, W, 2, 3)
    r, c = 5, 7
    assert out[0, r, c, 0].tolist() == [r * W + c - 1, r * W + c, r * W + c + 1]
    assert out[0, r, 0, 0, 0] == 0 and out[0, r, W - 1, 0, 2] == 0


def test_vertical_propagation_takes_upper_own_lower_offsets_with_zero_borders():
    out = propagate(numbered_offsets(), VERTICAL)
    r, c = 5, 7
    assert out[0, r, c, 1].tolist() == [(r - 1) * W + c, r * W + c, (r + 1) * W + c]
    assert out[0, 0, c, 1, 0] == 0 and out[0, H - 1, c, 1, 2] == 0


def test_initial_candidates_are_a_dilated_window_around_twice_the_coarse_offset():
    hc, wc = H // 2, W // 2
    coarse = torch.zeros(1, hc, wc, dtype=torch.long)
    coarse[0, 3, 4] = 5 * wc + 2  # coarse pixel (3,4) matches (5,2): offset (2,-2)
    offsets = initial_offsets(coarse, (H, W))
    assert offsets.shape == (1, H, W, 2, 16)
    for fine in [(6, 8), (7, 9)]:  # both fine pixels of coarse (3, 4) inherit the same candidates
        rows, cols = offsets[0, fine[0], fine[1], 0], offsets[0, fine[0], fine[1], 1]
        assert rows.tolist() == [4 + d for d in (-2, 0, 2, 4) for _ in range(4)]
        assert cols.tolist() == [-4 + d for _ in range(4) for d in (-2, 0, 2, 4)]


def known_features(shift: tuple[int, int], channels: int = 16, seed: int = 0):
    """φ random unit vectors; θ(r, c) = φ(r + dr, c + dc) where that lies inside, random elsewhere."""
    g = torch.Generator().manual_seed(seed)
    phi = normalize_channels(torch.randn(1, channels, H, W, generator=g, dtype=torch.float64), center=True)
    theta = normalize_channels(torch.randn(1, channels, H, W, generator=g, dtype=torch.float64), center=True)
    dr, dc = shift
    rows, cols = slice(max(0, -dr), H - max(0, dr)), slice(max(0, -dc), W - max(0, dc))
    src_rows, src_cols = slice(rows.start + dr, rows.stop + dr), slice(cols.start + dc, cols.stop + dc)
    theta[..., rows, cols] = phi[..., src_rows, src_cols]
    valid = torch.zeros(H, W, dtype=torch.bool)
    valid[rows, cols] = True
    return theta, phi, valid


@pytest.fixture
def patchmatch_without_gru():
    """The published level with its GRU's offset update switched off: pure PatchMatch."""
    torch.manual_seed(0)
    module = PatchMatch(feature_channels=16).double()
    torch.nn.init.zeros_(module.update.flow_head.conv2.weight)
    torch.nn.init.zeros_(module.update.flow_head.conv2.bias)
    return module


@pytest.mark.parametrize("shift", [(0, 0), (2, -4), (-4, 6)])
def test_level_recovers_a_known_shift_on_a_non_square_grid(shift, patchmatch_without_gru):
    theta, phi, valid = known_features(shift)
    g = torch.Generator().manual_seed(1)
    # Seed from a coarse match that is right up to ±1 coarse pixel, as the coarser level would give.
    rows = torch.arange(H // 2).view(-1, 1) + shift[0] // 2 + torch.randint(-1, 2, (H // 2, W // 2), generator=g)
    cols = torch.arange(W // 2).view(1, -1) + shift[1] // 2 + torch.randint(-1, 2, (H // 2, W // 2), generator=g)
    coarse = (rows.clamp(0, H // 2 - 1) * (W // 2) + cols.clamp(0, W // 2 - 1)).unsqueeze(0)
    exemplar = torch.rand(1, 3, H, W, generator=g, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        warp, index = patchmatch_without_gru(theta, phi, exemplar, initial_offsets(coarse, (H, W)))
    r, c = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    truth = ((r + shift[0]).clamp(0, H - 1) * W + (c + shift[1]).clamp(0, W - 1))
    assert index.shape == (1, H, W, 16)
    assert torch.equal(index[0, ..., 0][valid], truth[valid])
    expected = exemplar.flatten(2)[..., truth.flatten()].view(1, 3, H, W)
    assert torch.allclose(warp[..., valid], expected[..., valid], atol=1e-6)


def test_propagation_spreads_a_good_candidate_to_its_neighbours(patchmatch_without_gru):
    theta, phi, valid = known_features((2, -4))
    offsets = offsets_at(H, W, 10.0, 10.0, k=16)  # everywhere wrong…
    offsets[0, 10, 12] = torch.tensor([2.0, -4.0]).view(2, 1)  # …except one pixel
    found, _ = patchmatch_without_gru.search(theta, phi, offsets, horizontal_first=True)
    best = found[0, ..., 0]  # h×w×2
    # after one horizontal then vertical step the right offset reaches the 4-neighbourhood and beyond
    for r, c in [(10, 11), (10, 13), (9, 12), (11, 12), (9, 11), (11, 13)]:
        assert best[r, c].tolist() == [2.0, -4.0], (r, c)
    assert best[5, 30].tolist() != [2.0, -4.0]


def test_scores_are_dot_products_of_the_indexed_features():
    theta, phi, _ = known_features((0, 0))
    index = torch.randint(0, H * W, (1, H, W, 5), generator=torch.Generator().manual_seed(3))
    scores = match_scores(theta, phi, index, chunk_elements=1000)  # many chunks
    r, c, k = 7, 31, 2
    q = index[0, r, c, k].item()
    expected = (theta[0, :, r, c] * phi[0, :, q // W, q % W]).sum()
    torch.testing.assert_close(scores[0, r, c, k], expected)
    torch.testing.assert_close(scores, match_scores(theta, phi, index))  # chunking changes nothing


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_levels_steps_sharing_the_fused_buffers_equal_steps_with_fresh_ones(dtype, monkeypatch):
    from pipeline_cocosnet.models import fused_search
    from pipeline_cocosnet.models.patchmatch import propagation_orders

    if not fused_search.numba_installed():
        pytest.skip("numba not installed")
    torch.manual_seed(0)
    module = PatchMatch(feature_channels=8).to(dtype)
    g = torch.Generator().manual_seed(4)
    theta, phi = (normalize_channels(torch.randn(2, 8, H, W, generator=g, dtype=dtype)) for _ in range(2))
    exemplar = torch.rand(2, 3, H, W, generator=g, dtype=dtype)
    coarse = torch.randint(0, (H // 2) * (W // 2), (2, H // 2, W // 2), generator=g)
    offsets = initial_offsets(coarse, (H, W))
    # one generator per item: some steps split the batch by propagation order, some do not
    seeds = (0, 1)
    orders = propagation_orders([torch.Generator().manual_seed(s) for s in seeds], module.iterations, 2)
    assert any(a != b for a, b in orders) and any(a == b for a, b in orders)
    with torch.no_grad():
        shared = module(theta, phi, exemplar, offsets, generator=[torch.Generator().manual_seed(s) for s in seeds])
        unshared = fused_search.fused_search
        monkeypatch.setattr(fused_search, "fused_search", lambda *args, workspace=None: unshared(*args))
        fresh = module(theta, phi, exemplar, offsets, generator=[torch.Generator().manual_seed(s) for s in seeds])
    assert torch.equal(shared[1], fresh[1]) and torch.equal(shared[0], fresh[0])
