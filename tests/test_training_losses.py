"""Training losses, discriminator, VGG19 and spectral-norm folding on inputs with known answers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline_cocosnet import CoCosNetCorrespondence, CoCosNetTranslator
from pipeline_cocosnet.models.attention import dense_attention
from pipeline_cocosnet.models.sampling import bilinear_warp, sample_at_offsets
from pipeline_cocosnet.training.config import ConfigError, TrainConfig, load_config
from pipeline_cocosnet.training.discriminator import MultiScaleDiscriminator, map_published_discriminator_keys
from pipeline_cocosnet.training.losses import (
    contextual_loss,
    contextual_style_loss,
    cycle_warp,
    discriminator_feature_matching_loss,
    domain_alignment_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    vgg_feature_matching_loss,
    warp_loss,
    weighted_mean,
)
from pipeline_cocosnet.training.spectral import apply_spectral_norm, folded_copy
from pipeline_cocosnet.training.vgg import VGG_LAYERS, VGGWeightsError, load_vgg19, save_random_vgg19

from .conftest import random_inputs


def d_out(*logits: float) -> list[list[torch.Tensor]]:
    """Discriminator-like output: one scale per value, a feature map then constant logits."""
    return [[torch.ones(2, 4, 3, 3), torch.full((2, 1, 3, 3), v)] for v in logits]


def test_hinge_losses_have_the_textbook_values():
    # D: relu(1 - real) + relu(1 + fake); real 0.5 → 0.5, fake -0.25 → 0.75; scale 2: real 2 → 0, fake -3 → 0
    assert hinge_discriminator_loss(d_out(0.5, 2.0), d_out(-0.25, -3.0)).item() == pytest.approx((1.25 + 0.0) / 2)
    assert hinge_generator_loss(d_out(0.5, -1.5)).item() == pytest.approx((-0.5 + 1.5) / 2)


def test_feature_matching_losses_vanish_for_identical_features_and_skip_the_logits():
    real, fake = d_out(1.0, 2.0), d_out(-5.0, 7.0)  # only the logits differ
    assert discriminator_feature_matching_loss(real, fake).item() == 0
    fake[0][0] = fake[0][0] + 2  # one feature map off by 2 → L1 2, divided by 2 scales
    assert discriminator_feature_matching_loss(real, fake).item() == pytest.approx(1.0)
    feats = [torch.rand(2, 3, 4, 4) for _ in range(5)]
    assert vgg_feature_matching_loss(feats, [f.clone() for f in feats]).item() == 0
    shifted = [f + 1 for f in feats]
    assert vgg_feature_matching_loss(shifted, feats).item() == pytest.approx(1 / 32 + 1 / 16 + 1 / 8 + 1 / 4 + 1)


def test_weighted_mean_counts_only_weighted_samples():
    x = torch.stack([torch.full((3, 2, 2), 1.0), torch.full((3, 2, 2), 5.0)])
    assert weighted_mean(x).item() == 3
    assert weighted_mean(x, torch.tensor([1.0, 0.0])).item() == 1
    assert weighted_mean(x, torch.tensor([0.0, 0.0])).item() == 0


def test_warp_loss_is_zero_for_the_pooled_target_and_sums_levels():
    target = torch.rand(2, 3, 64, 64) * 2 - 1
    warps = [F.avg_pool2d(target, f) for f in (8, 4, 2)] + [target]
    assert warp_loss(warps, target).item() == pytest.approx(0, abs=1e-7)
    off = [w + 0.5 for w in warps]
    assert warp_loss(off, target).item() == pytest.approx(4 * 0.5)
    assert warp_loss(off, target, torch.zeros(2)).item() == 0  # no same-content pair: no warp loss


def test_domain_alignment_is_l1_summed_over_levels():
    feats = [torch.rand(1, 4, s, s) for s in (8, 16)]
    assert domain_alignment_loss(feats, feats).item() == 0
    assert domain_alignment_loss(feats, [f + 0.25 for f in feats]).item() == pytest.approx(0.5)


def test_contextual_loss_is_lowest_for_identical_features():
    torch.manual_seed(0)
    x = torch.rand(2, 8, 6, 6)
    same = contextual_loss(x, x.clone())
    other = contextual_loss(torch.rand(2, 8, 6, 6), x)
    assert same.shape == (2,) and (same < other).all()
    # every x_i matches its own y_i best, with affinity softmax((1 - d̃)/h): CX close to 1, loss close to 0
    assert same.max().item() < 0.2
    feats = [torch.rand(1, c, s, s) for c, s in ((4, 16), (8, 8), (8, 8), (16, 4), (16, 2))]
    assert torch.isfinite(contextual_style_loss(feats, feats))


def test_cycle_warp_is_the_transposed_attention_applied_to_the_warp():
    torch.manual_seed(0)
    theta, phi = F.normalize(torch.randn(1, 4, 4, 4), dim=1), F.normalize(torch.randn(1, 4, 4, 4), dim=1)
    warp = torch.rand(1, 3, 4, 4)
    expected = torch.softmax((theta.flatten(2).transpose(1, 2) @ phi.flatten(2)).transpose(1, 2) / 0.5, dim=-1)
    expected = (expected @ warp.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(1, 3, 4, 4)
    torch.testing.assert_close(cycle_warp(theta, phi, warp, 0.5), expected)
    torch.testing.assert_close(dense_attention(phi, theta, 0.5), torch.softmax(phi.flatten(2).transpose(1, 2) @ theta.flatten(2) / 0.5, -1))


def test_discriminator_shapes_and_published_key_mapping():
    disc = MultiScaleDiscriminator(label_channels=4, ndf=8, n_layers=4, num_d=2)
    out = disc(torch.rand(3, 7, 64, 64))
    assert len(out) == 2 and [len(o) for o in out] == [5, 5]
    assert out[0][-1].shape == (3, 1, 6, 6) and out[1][-1].shape == (3, 1, 2, 2)
    assert [o.shape[1] for o in out[0]] == [8, 16, 32, 64, 1]
    # a published-style state dict (old spectral_norm names + the unused decoder) maps onto ours
    published = {}
    for key, value in disc.state_dict().items():
        key = key.replace(".parametrizations.weight.original", ".weight_orig").replace(".parametrizations.weight.0._u", ".weight_u")
        published[key.replace(".parametrizations.weight.0._v", ".weight_v")] = value
    published["discriminator_0.dec.1.weight_orig"] = torch.zeros(1)
    mapped = map_published_discriminator_keys(published)
    assert set(mapped) == set(disc.state_dict())


def test_vgg19_loads_either_layout_with_the_same_features(tmp_path):
    widths = (4, 8, 8, 16, 16)
    tv = load_vgg19(save_random_vgg19(tmp_path / "tv.pth", widths, "torchvision", seed=3))
    caffe = load_vgg19(save_random_vgg19(tmp_path / "vgg19_conv.pth", widths, "caffe", seed=3), input_style="torchvision")
    assert tv.input_style == "torchvision" and load_vgg19(tmp_path / "vgg19_conv.pth").input_style == "caffe"
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    a, b = tv(image), caffe(image)
    assert [tuple(f.shape) for f in a] == [(1, 4, 32, 32), (1, 8, 16, 16), (1, 8, 8, 8), (1, 16, 4, 4), (1, 16, 2, 2)]
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    assert not any(p.requires_grad for p in tv.parameters())
    assert len(VGG_LAYERS) == 5


def test_missing_vgg_weights_name_the_path_and_how_to_get_them(tmp_path):
    with pytest.raises(VGGWeightsError, match=r"not found at .*nowhere\.pth.*vgg19-dcbb9e9d\.pth.*vgg19_conv\.pth"):
        load_vgg19(tmp_path / "nowhere.pth")
    torch.save({"something.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(VGGWeightsError, match="not a VGG19 state dict"):
        load_vgg19(tmp_path / "bad.pth")


def test_spectral_norm_is_applied_to_every_snconv_and_folds_back_exactly():
    torch.manual_seed(0)
    corr = CoCosNetCorrespondence(label_channels=3, nef=8, spade_hidden=16)
    translator = CoCosNetTranslator(label_channels=3, ngf=8, spade_hidden=16)
    assert apply_spectral_norm(corr) == 2 * (1 + 4 + 4 * 2) + 2 * 2  # per encoder: conv_in, 4 stages, 4 SPADE blocks (+2 shortcuts)
    apply_spectral_norm(translator)
    inputs = random_inputs(1, 3, 64, 64)
    corr.train()
    translator.train()
    with torch.no_grad():
        for _ in range(3):  # power iterations move u, v
            translator(inputs[0], corr(*inputs).warps)
    corr.eval()
    translator.eval()
    plain_corr, plain_translator = folded_copy(corr), folded_copy(translator)
    assert not any("parametrizations" in k for k in plain_corr.state_dict())
    with torch.no_grad():
        ours = corr(*inputs)
        theirs = plain_corr(*inputs)
        for x, y in zip(ours.warps, theirs.warps):
            torch.testing.assert_close(x, y)
        torch.testing.assert_close(translator(inputs[0], ours.warps), plain_translator(inputs[0], theirs.warps))


def test_bilinear_sampling_at_integer_offsets_is_the_published_gather():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8)
    offsets = torch.randint(-9, 9, (2, 2, 5, 8, 8)).float()
    sampled = sample_at_offsets(x, offsets)
    rows = (torch.arange(8).view(8, 1) + offsets[:, 0]).clamp(0, 7).long()
    cols = (torch.arange(8).view(1, 8) + offsets[:, 1]).clamp(0, 7).long()
    expected = torch.stack([x[b][:, rows[b], cols[b]] for b in range(2)])
    torch.testing.assert_close(sampled, expected)
    # halfway between two columns: the mean of both
    half = sample_at_offsets(x, torch.zeros(2, 2, 1, 8, 8).index_fill_(1, torch.tensor([1]), 0.5))
    torch.testing.assert_close(half[..., 0, :, :7], (x[..., :7] + x[..., 1:]) / 2)
    theta = F.normalize(torch.randn(2, 4, 8, 8), dim=1)
    offsets.requires_grad_(True)
    bilinear_warp(theta, theta, x, offsets + 0.3, 0.1).sum().backward()
    assert offsets.grad.abs().sum() > 0


def test_config_overrides_are_checked():
    config = load_config(None, ["model.learn_gru=true", "data.size=[64, 96]", "loss.warp=250"])
    assert config.model.learn_gru is True and config.data.size == [64, 96] and config.loss.warp == 250.0
    defaults = TrainConfig()
    assert (defaults.optim.lr_generator, defaults.optim.lr_discriminator) == (5e-5, 2e-4)
    assert defaults.optim.betas == [0.0, 0.9] and defaults.optim.eps_generator == 1e-3
    with pytest.raises(ConfigError, match="unknown config key 'model.lr'"):
        load_config(None, ["model.lr=1"])
    with pytest.raises(ConfigError, match="train.batch_size: cannot use 'two'"):
        load_config(None, ["train.batch_size=two"])
