"""CUDA readiness, checked on the CPU (issue 19): device-correct tensors, index dtypes, fp16-safe
normalisation, float32 correlations, offload hooks, host syncs, the frozen-GRU graph, TF32 policy.

Checks that need a GPU are marked ``cuda`` and skipped without one.
"""

from __future__ import annotations

import pytest
import torch
from torch.overrides import TorchFunctionMode

from pipeline_cocosnet.reference.naive import naive_copy
from pipeline_cocosnet import CoCosNetCorrespondence, CoCosNetPipeline, CoCosNetTranslator
from pipeline_cocosnet.models.layers import normalize_channels
from pipeline_cocosnet.models.matching import index_arithmetic_dtype, offsets_to_indices
from pipeline_cocosnet.training.losses import cycle_warp
from tests.conftest import random_inputs

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def small_models(learn_gru: bool = False) -> tuple[CoCosNetCorrespondence, CoCosNetTranslator]:
    torch.manual_seed(0)
    correspondence = CoCosNetCorrespondence(
        label_channels=4, nef=8, hidden_channels=8, spade_hidden=8, iterations=2, learn_gru=learn_gru
    )
    return correspondence.eval(), CoCosNetTranslator(label_channels=4, ngf=4, spade_hidden=8).eval()


# ---------------------------------------------------------------- device-correct tensors


@pytest.mark.parametrize("implementation", ["fast", "naive", "learn_gru"])
def test_models_create_every_tensor_on_the_inputs_device(implementation):
    """On PyTorch's ``meta`` device a tensor made without ``device=`` lands on the CPU and the next op fails."""
    correspondence, translator = small_models(learn_gru=implementation == "learn_gru")
    if implementation == "naive":
        correspondence = naive_copy(correspondence)
    correspondence.to("meta")
    translator.to("meta")
    label, exemplar, exemplar_label = (t.to("meta") for t in random_inputs(2, 4, 64, 64))
    out = correspondence(label, exemplar, exemplar_label)
    assert out.indices.device.type == "meta" and all(w.device.type == "meta" for w in out.warps)
    assert translator(label, out.warps).device.type == "meta"
    features = correspondence.encode(label, exemplar, exemplar_label)
    assert cycle_warp(features.theta[0], features.phi[0], out.warps[0], 0.01).device.type == "meta"


# ---------------------------------------------------------------- index dtypes


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_offsets_to_indices_stays_in_range_for_narrow_dtypes(dtype):
    """bf16 gave h·w (one past the end) at 1024², fp16 INT64_MIN: the combination is promoted."""
    h = w = 1024
    offsets = torch.zeros(1, h, w, 2, 2)
    offsets[..., 0, 0], offsets[..., 1, 0] = h, w  # clamped to the last pixel
    offsets[..., 0, 1], offsets[..., 1, 1] = -h, 3.0  # first row, column c + 3 (clamped)
    index = offsets_to_indices(offsets.to(dtype))
    assert index.dtype == torch.int64
    assert int(index.min()) >= 0 and int(index.max()) == h * w - 1
    assert torch.equal(index, offsets_to_indices(offsets.double()))


def test_index_arithmetic_dtype_promotes_where_the_mantissa_is_too_short():
    assert index_arithmetic_dtype(64, 64, torch.float16) == torch.float32
    assert index_arithmetic_dtype(1024, 1024, torch.bfloat16) == torch.float32
    assert index_arithmetic_dtype(4096, 4096, torch.float32) == torch.float32  # 2^24: still exact
    assert index_arithmetic_dtype(4096, 4097, torch.float32) == torch.float64
    assert index_arithmetic_dtype(4096, 4097, torch.bfloat16) == torch.float64
    assert index_arithmetic_dtype(8192, 8192, torch.float64) == torch.float64


# ---------------------------------------------------------------- half-precision numerics


def test_normalize_channels_of_a_zero_vector_is_finite_in_fp16():
    x = torch.zeros(1, 4, 2, 2, dtype=torch.float16)
    x[..., 0, 0] = torch.tensor([3.0, 4.0, 0.0, 0.0])
    out = normalize_channels(x)
    assert torch.isfinite(out).all()
    assert out[0, :, 0, 0].tolist() == pytest.approx([0.6, 0.8, 0.0, 0.0], abs=1e-3)
    assert torch.equal(out[..., 1, 1], torch.zeros(1, 4, dtype=torch.float16))


def test_normalize_channels_keeps_the_published_eps_in_float32_and_float64():
    x = torch.full((1, 2, 1, 1), 1e-9, dtype=torch.float64)
    norm = 2**0.5 * 1e-9
    assert torch.allclose(normalize_channels(x), x / (norm + 1e-10), rtol=0, atol=1e-15)


def test_every_correlation_runs_in_float32_under_autocast():
    from pipeline_cocosnet.models.attention import best_correlation, dense_attention, dense_correspondence
    from pipeline_cocosnet.models.matching import match_scores, warp_by_indices
    from pipeline_cocosnet.models.sampling import bilinear_warp

    g = torch.Generator().manual_seed(0)
    theta, phi = (normalize_channels(torch.randn(1, 8, 8, 8, generator=g)) for _ in range(2))
    warp = torch.rand(1, 3, 8, 8, generator=g)
    index = torch.randint(0, 64, (1, 8, 8, 4), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = {
            "cycle_warp": cycle_warp(theta, phi, warp, 0.01),
            "dense_correspondence": dense_correspondence(theta, phi, warp, 0.01)[0],
            "dense_attention": dense_attention(theta, phi, 0.01),
            "best_correlation": best_correlation(theta, phi),
            "match_scores": match_scores(theta, phi, index),
            "warp_by_indices": warp_by_indices(warp, index, torch.rand(1, 8, 8, 4, generator=g)),
            "bilinear_warp": bilinear_warp(theta, phi, warp, torch.zeros(1, 2, 4, 8, 8), 0.01),
        }
    assert {name: out.dtype for name, out in outputs.items()} == dict.fromkeys(outputs, torch.float32)


# ---------------------------------------------------------------- offload


def label_pipeline() -> CoCosNetPipeline:
    correspondence, translator = small_models()
    pipe = CoCosNetPipeline(correspondence, translator, task=None, resolution=(64, 64))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_model_cpu_offload_hook_fires_for_every_entry_point(monkeypatch):
    """accelerate wraps ``forward`` only: ``encode`` and ``match`` must fire the correspondence's hook."""
    from accelerate.hooks import CpuOffload

    fired = []
    pre_forward = CpuOffload.pre_forward

    def spy(self, module, *args, **kwargs):
        fired.append(type(module).__name__)
        return pre_forward(self, module, *args, **kwargs)

    monkeypatch.setattr(CpuOffload, "pre_forward", spy)
    pipe = label_pipeline()
    pipe.enable_model_cpu_offload(device="cpu")
    label, exemplar, exemplar_label = random_inputs(1, 4, 64, 64)
    expected = label_pipeline()(label, exemplar, exemplar_label, output_type="pt").images

    images = pipe(label, exemplar, exemplar_label, output_type="pt").images
    assert torch.equal(images, expected)
    # each entry point fired the correspondence hook on entry, the translator its own afterwards
    assert fired.count("CoCosNetCorrespondence") >= 2 and fired.count("CoCosNetTranslator") == 1
    fired.clear()
    pipe.suggest_exemplars(label[0], [exemplar[0]], [exemplar_label[0]])
    assert "CoCosNetCorrespondence" in fired


def test_sequential_cpu_offload_says_it_is_not_supported():
    with pytest.raises(NotImplementedError, match="use enable_model_cpu_offload"):
        label_pipeline().enable_sequential_cpu_offload()


# ---------------------------------------------------------------- host syncs and generators

HOST_SYNCS = {"__bool__", "item", "tolist", "cpu", "numpy", "__int__", "__float__", "__index__"}


class CountHostSyncs(TorchFunctionMode):
    """Counts the tensor → Python / host reads (each one a device sync on CUDA)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in HOST_SYNCS:
            self.count += 1
        return func(*args, **(kwargs or {}))


def patchmatch_inputs(batch: int = 2):
    correspondence, _ = small_models()
    label, exemplar, exemplar_label = random_inputs(batch, 4, 64, 64)
    with torch.no_grad():
        features = correspondence.encode(label, exemplar, exemplar_label)
        _, index = correspondence.dense_correspondence(features.theta[0], features.phi[0], torch.nn.functional.avg_pool2d(exemplar, 8))
    from pipeline_cocosnet.models.patchmatch import initial_offsets

    offsets = initial_offsets(index, tuple(features.theta[1].shape[-2:]), 4)
    return correspondence.patchmatch, features.theta[1], features.phi[1], torch.nn.functional.avg_pool2d(exemplar, 4), offsets


@pytest.mark.parametrize("iterations", [2, 6])
def test_a_seeded_patchmatch_level_syncs_the_host_once_not_per_iteration(iterations, monkeypatch):
    from pipeline_cocosnet.models import fused_search

    # the tensor path: what runs on CUDA (the fused step is CPU-only and reads its inputs as arrays)
    monkeypatch.setattr(fused_search, "available", lambda *args: False)
    patchmatch, theta, phi, exemplar, offsets = patchmatch_inputs()
    patchmatch.iterations = iterations
    with torch.no_grad(), CountHostSyncs() as syncs:
        patchmatch(theta, phi, exemplar, offsets, torch.Generator().manual_seed(0))
    assert syncs.count == 1


def test_a_list_of_generators_gives_each_item_its_own_orders():
    """Item i's output depends on generator i only: the batch equals each item run alone."""
    patchmatch, theta, phi, exemplar, offsets = patchmatch_inputs()
    patchmatch.iterations = 4
    seeds = (1, 5)  # seed 1 and 5 draw different orders in 4 iterations, so the batch is split
    from pipeline_cocosnet.models.patchmatch import propagation_orders

    orders = propagation_orders([torch.Generator().manual_seed(s) for s in seeds], 4, 2)
    assert any(a != b for a, b in orders)
    with torch.no_grad():
        warp, index = patchmatch(theta, phi, exemplar, offsets, [torch.Generator().manual_seed(s) for s in seeds])
        for i, seed in enumerate(seeds):
            item = slice(i, i + 1)
            alone_warp, alone_index = patchmatch(
                theta[item], phi[item], exemplar[item], offsets[item], torch.Generator().manual_seed(seed)
            )
            assert torch.equal(index[item], alone_index)
            assert torch.allclose(warp[item], alone_warp, atol=1e-6)


def test_a_wrong_number_of_generators_is_a_clear_error():
    pipe = label_pipeline()
    label, exemplar, exemplar_label = random_inputs(2, 4, 64, 64)
    with pytest.raises(ValueError, match="3 generators for a batch of 2"):
        pipe(label, exemplar, exemplar_label, generator=[torch.Generator() for _ in range(3)])


def test_naive_twin_takes_the_same_generator_lists():
    patchmatch, theta, phi, exemplar, offsets = patchmatch_inputs()
    patchmatch.iterations = 4
    from pipeline_cocosnet.reference.naive import NaivePatchMatch

    naive = NaivePatchMatch(8, 8, iterations=4)
    naive.load_state_dict(patchmatch.state_dict())
    naive.eval()
    generators = lambda: [torch.Generator().manual_seed(s) for s in (1, 5)]  # noqa: E731
    with torch.no_grad():
        torch.nn.Module.to(patchmatch, torch.float64)
        torch.nn.Module.to(naive, torch.float64)
        fast = patchmatch(theta.double(), phi.double(), exemplar.double(), offsets.double(), generators())
        slow = naive(theta.double(), phi.double(), exemplar.double(), offsets.double(), generators())
    assert torch.equal(fast[1], slow[1])
    assert torch.allclose(fast[0], slow[0], atol=1e-10)


# ---------------------------------------------------------------- training


@pytest.mark.parametrize("learn_gru", [False, True])
def test_the_frozen_gru_records_no_autograd_graph(learn_gru):
    """Published mode: the GRU's offsets reach the loss only as integer indices, so it runs without a graph."""
    patchmatch, theta, phi, exemplar, offsets = patchmatch_inputs()
    patchmatch.learn_gru = learn_gru
    grad_enabled = []
    for module in (patchmatch.init_hidden, patchmatch.update):
        module.register_forward_hook(lambda *_: grad_enabled.append(torch.is_grad_enabled()))
    theta, phi = theta.detach().requires_grad_(), phi.detach().requires_grad_()
    warp, _ = patchmatch(theta, phi, exemplar, offsets)
    warp.sum().backward()
    assert grad_enabled == [learn_gru] * (1 + patchmatch.iterations)
    assert theta.grad is not None and phi.grad is not None  # the final warp's scores still train θ, φ


def test_finiteness_check_is_one_host_sync_and_names_every_bad_loss():
    from pipeline_cocosnet.training.trainer import check_finite

    losses = {f"G_{i}": torch.tensor(float(i)) for i in range(12)}
    with CountHostSyncs() as syncs:
        check_finite(losses, 3)
    assert syncs.count == 1
    losses["G_4"], losses["D"] = torch.tensor(float("nan")), torch.tensor(float("inf"))
    with pytest.raises(FloatingPointError, match=r"non-finite loss at step 3: G_4, D$"):
        check_finite(losses, 3)


def test_synthetic_training_config_does_not_force_the_cpu():
    from pathlib import Path

    import yaml

    config = yaml.safe_load((Path(__file__).parents[1] / "configs" / "train_synthetic.yaml").read_text())
    assert not config["train"].get("cpu", False)


# ---------------------------------------------------------------- TF32 policy


def precision_flags() -> tuple[str, str]:
    return torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision


def test_importing_the_package_changes_no_backend_setting():
    import subprocess
    import sys

    code = (
        "import torch; f = lambda: (torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision, "
        "torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic); "
        "before = f(); import pipeline_cocosnet, pipeline_cocosnet.training.trainer, pipeline_cocosnet.reference.naive; print(before == f())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize("tf32_convolutions", [True, False])
def test_the_pipeline_applies_its_tf32_policy_only_inside_its_calls(tf32_convolutions):
    pipe = label_pipeline()
    pipe.tf32_convolutions = tf32_convolutions
    seen = {}
    for name, module in (("translator", pipe.translator), ("patchmatch", pipe.correspondence.patchmatch)):
        module.register_forward_hook(lambda *_, _name=name: seen.update({_name: precision_flags()}) and None)
    before = precision_flags()
    with _matmul_precision("tf32"):  # as a user's torch.set_float32_matmul_precision("high")
        outside = precision_flags()
        pipe(*random_inputs(1, 4, 64, 64), output_type="pt")
        assert precision_flags() == outside  # restored
    expected = ("tf32" if tf32_convolutions else "ieee", "ieee")  # a user's global TF32 matmul does not reach the correlations
    assert seen == {"translator": expected, "patchmatch": expected}
    assert precision_flags() == before


def _matmul_precision(value: str):
    from pipeline_cocosnet.precision import float32_precision

    return float32_precision(convolutions=torch.backends.cudnn.conv.fp32_precision, matmul=value)


def test_ieee_float32_sets_and_restores_full_precision():
    from pipeline_cocosnet.precision import ieee_float32

    before = precision_flags()
    with pytest.raises(RuntimeError, match="inside"):
        with ieee_float32():
            assert precision_flags() == ("ieee", "ieee")
            raise RuntimeError("inside")
    assert precision_flags() == before


def test_readme_states_the_tf32_policy():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## Precision") :]
    section = section[: section.index("\n## ", 1)]
    for phrase in ("TF32", "tf32_convolutions", "ieee_float32", "IEEE float32"):
        assert phrase in section, phrase


# ---------------------------------------------------------------- on a GPU (skipped without CUDA)


@pytest.mark.cuda
@cuda
def test_cuda_float64_equals_cpu():
    correspondence, translator = small_models()
    torch.nn.Module.to(correspondence, torch.float64)
    inputs = [t.double() for t in random_inputs(1, 4, 64, 64)]
    with torch.no_grad():
        cpu = correspondence(*inputs)
        correspondence.to("cuda")
        gpu = correspondence(*(t.cuda() for t in inputs))
    assert torch.equal(cpu.indices, gpu.indices.cpu())
    assert all(torch.allclose(a, b.cpu(), atol=1e-10) for a, b in zip(cpu.warps, gpu.warps))


@pytest.mark.cuda
@cuda
def test_cuda_model_offload_equals_the_resident_pipeline():
    label, exemplar, exemplar_label = random_inputs(1, 4, 64, 64)
    resident = label_pipeline().to("cuda")
    from pipeline_cocosnet.precision import ieee_float32

    with ieee_float32():
        expected = resident(label, exemplar, exemplar_label, output_type="pt").images
        offloaded = label_pipeline()
        offloaded.enable_model_cpu_offload()
        images = offloaded(label, exemplar, exemplar_label, output_type="pt").images
    assert torch.allclose(images, expected, atol=1e-5)


# ---------------------------------------------------------------- benchmark defaults


def test_bench_inference_cuda_defaults_fit_a_short_lease(monkeypatch):
    import benchmarks.bench_inference as bench

    ran = []

    def record(where):
        return lambda case: ran.append((where, case["impl"], case["size"], case["batch"], case["dtype"])) or {**case, "error": "-"}

    monkeypatch.setattr(bench, "run_case_here", record("here"))
    monkeypatch.setattr(bench, "run_case", record("subprocess"))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "a GPU")
    bench.main(["--device", "cuda"])
    assert sorted(ran) == sorted(("here", "fast", s, 1, d) for s in (512, 1024) for d in ("float32", "bfloat16"))
    ran.clear()
    bench.main(["--device", "cuda", "--isolate", "--sizes", "256", "--impl", "fast", "naive"])
    # the naive rewrite runs in float32 only (it is a yardstick, not a precision study)
    assert sorted(ran) == sorted([("subprocess", "fast", 256, 1, d) for d in ("float32", "bfloat16")] + [("subprocess", "naive", 256, 1, "float32")])
    ran.clear()
    bench.main(["--device", "cpu"])  # the CPU defaults: a subprocess per case, float32 and bf16, naive up to 512² at batch 1
    fast = [("subprocess", "fast", s, b, d) for s in (256, 512, 1024) for b in (1, 4) for d in ("float32", "bfloat16")]
    naive = [("subprocess", "naive", s, 1, "float32") for s in (256, 512)]
    assert sorted(ran) == sorted(fast + naive)


def test_fp16_discriminator_overflow_halves_only_its_own_loss_scale(tmp_path, monkeypatch):
    """accelerate has one GradScaler; the trainer gives D a copy, so a D overflow leaves G's scale alone.

    There is no fp16 scaler on the CPU, so accelerate's is made a CPU GradScaler before ``prepare``.
    """
    from accelerate import Accelerator

    from pipeline_cocosnet.training import trainer as trainer_module
    from tests.test_training_loop import reset_accelerator_state, tiny_config

    init = Accelerator.__init__

    def with_scaler(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)

    monkeypatch.setattr(Accelerator, "__init__", with_scaler)
    hinge = trainer_module.hinge_discriminator_loss
    monkeypatch.setattr(trainer_module, "hinge_discriminator_loss", lambda real, fake: hinge(real, fake) * float("inf"))
    reset_accelerator_state()
    config = tiny_config(
        tmp_path, "unused", **{"loss.vgg_feature": 0.0, "loss.perceptual": 0.0, "loss.contextual": 0.0, "data.num_samples": 4}
    )
    trainer = trainer_module.Trainer(config)
    generator_scaler = trainer.accelerator.scaler
    assert trainer.discriminator_scaler is not None and trainer.discriminator_scaler is not generator_scaler
    assert trainer.opt_d.scaler is trainer.discriminator_scaler and trainer.opt_g.scaler is generator_scaler
    trainer.train_step(next(iter(trainer.loader)))
    assert trainer.discriminator_scaler.get_scale() == 2.0**15  # D's step skipped, its scale halved
    assert generator_scaler.get_scale() == 2.0**16  # G's untouched
    assert trainer.accelerator.scaler is generator_scaler
