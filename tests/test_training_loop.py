"""The training loop on CPU: a tiny model on synthetic data, resume, saved pipeline, GRU gradients, CLI."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate.tracking import GeneralTracker
from torch.utils.data import default_collate

from pipeline_cocosnet import CoCosNetPipeline
from pipeline_cocosnet.cli import main as cocosnet_main
from pipeline_cocosnet.training.config import TrainConfig
from pipeline_cocosnet.training.data import build_dataset
from pipeline_cocosnet.training.trainer import Trainer
from pipeline_cocosnet.training.vgg import save_random_vgg19

STEPS, CHECKPOINT = 30, 15
LOSSES = {"D", "G", "G_gan", "G_gan_feature", "G_vgg_feature", "G_perceptual", "G_contextual", "G_domain_alignment", "G_warp", "G_warp_cycle"}


CONFIGS = Path(__file__).parents[1] / "configs"


def reset_accelerator_state() -> None:
    """accelerate keeps one process-wide state; a new mixed-precision setting needs it cleared."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def tiny_config(output_dir, vgg, **overrides) -> TrainConfig:
    """64×64, nef/ngf/ndf 8, 2 PatchMatch iterations; a learning rate that shows learning in a few dozen steps."""
    config = TrainConfig()
    for key, value in {
        "model.label_channels": 4,
        "model.nef": 8,
        "model.ngf": 8,
        "model.ndf": 8,
        "model.spade_hidden": 16,
        "model.iterations": 2,
        "data.kind": "synthetic",
        "data.size": [64, 64],
        "data.num_samples": 32,
        "data.num_classes": 4,
        "data.num_workers": 0,
        "loss.vgg_weights": str(vgg),
        "optim.lr_generator": 1e-3,
        "optim.lr_discriminator": 4e-3,
        "optim.eps_generator": 1e-8,
        "train.output_dir": str(output_dir),
        "train.max_steps": STEPS,
        "train.log_every": 5,
        "train.sample_every": CHECKPOINT,
        "train.checkpoint_every": CHECKPOINT,
        "train.report_to": "none",
        "train.cpu": True,
        **overrides,
    }.items():
        config.set(key, value)
    return config


@pytest.fixture(scope="module")
def vgg(tmp_path_factory):
    return save_random_vgg19(tmp_path_factory.mktemp("vgg") / "vgg19.pth", widths=(4, 8, 16, 32, 32))


def held_out_batch(config: TrainConfig) -> dict:
    data = build_dataset(config.data, config.model.label_channels)
    data.set_epoch(99)  # augmentations the training never draws
    return default_collate([data[i] for i in range(8)])


class RecordingTrainer(Trainer):
    """Keeps in-memory copies of the optimizer states and weights at every checkpoint."""

    def save_checkpoint(self):
        folder = super().save_checkpoint()
        self.saved = getattr(self, "saved", {})
        self.saved[self.state.step] = (
            copy.deepcopy(self.opt_g.state_dict()),
            copy.deepcopy(self.opt_d.state_dict()),
            {k: v.clone() for k, v in self.generator_module.state_dict().items()},
        )
        return folder


class RecordingTracker(GeneralTracker):
    """A tracker of one's own (accelerate's ``GeneralTracker``): keeps what it is given."""

    name = "recorder"
    requires_logging_directory = False

    def __init__(self):
        super().__init__()
        self.scalars: list[tuple[int, dict]] = []
        self.images: list[tuple[int, dict]] = []

    @property
    def tracker(self):
        return self

    def store_init_configuration(self, values):
        self.config = values

    def log(self, values, step=None, **kwargs):
        self.scalars.append((step, dict(values)))

    def log_images(self, values, step=None, **kwargs):
        self.images.append((step, values))


@pytest.fixture(scope="module")
def run(tmp_path_factory, vgg):
    output = tmp_path_factory.mktemp("run")
    config = tiny_config(output, vgg)
    trainer = RecordingTrainer(config, trackers=[RecordingTracker()])
    batch = held_out_batch(config)
    before = trainer.warp_errors(batch)
    final = trainer.train()
    after = trainer.warp_errors(batch)
    return trainer, final, batch, before, after


def test_every_loss_is_finite_and_logged(run):
    trainer, final, *_ = run
    assert [row["step"] for row in trainer.history] == [5, 10, 15, 20, 25, 30]
    for row in trainer.history:
        assert set(row) - {"step"} == LOSSES
        assert all(math.isfinite(v) for v in row.values())
    csv = (trainer.output_dir / "losses.csv").read_text().splitlines()
    assert csv[0].split(",")[0] == "step" and len(csv) == 7
    assert (trainer.output_dir / "samples" / f"step-{CHECKPOINT:07d}.png").is_file()


def test_losses_and_sample_grids_reach_the_trackers(run):
    trainer, *_ = run
    (recorder,) = trainer.accelerator.trackers
    assert recorder.config["train.max_steps"] == STEPS  # the run's config, flattened
    assert [step for step, _ in recorder.scalars] == [5, 10, 15, 20, 25, 30]
    assert recorder.scalars[-1][1] == {k: v for k, v in trainer.history[-1].items() if k != "step"}
    steps = [step for step, _ in recorder.images]
    assert steps[0] == CHECKPOINT and steps[-1] == STEPS
    (grid,) = recorder.images[0][1]["samples"]  # one H×W×3 uint8 picture: 5 columns of 64 px, ≤ 4 rows
    assert grid.dtype == np.uint8 and grid.shape[1:] == (5 * 64, 3) and grid.shape[0] % 64 == 0


def test_report_to_names_accelerate_trackers_and_warns_about_missing_ones(monkeypatch, caplog):
    import accelerate.tracking

    from pipeline_cocosnet.training.monitor import requested_trackers

    monkeypatch.setattr(accelerate.tracking, "get_available_trackers", lambda: ["tensorboard"])
    with caplog.at_level("WARNING", logger="pipeline_cocosnet.training"):
        assert requested_trackers(["tensorboard", "wandb"]) == ["tensorboard"]
    assert "train.report_to asks for wandb, which is not installed (pip install wandb)" in caplog.text
    assert requested_trackers("tensorboard, tensorboard") == ["tensorboard"]
    assert requested_trackers("none") == [] and requested_trackers("all") == ["all"]
    assert requested_trackers("tensorboard", tensorboard=False) == []  # older configs' `tensorboard: false`
    with pytest.raises(ValueError, match="unknown tracker tensorbord"):
        requested_trackers("tensorbord")


def test_warp_loss_falls_clearly(run):
    *_, before, after = run
    print(f"warp L1 per level before {['%.3f' % x for x in before]} after {['%.3f' % x for x in after]}")
    # measured: 0.797 of the start before the CPU-speed/CUDA-ready numerics changes, 0.802 after, 0.879 with the
    # fused CPU search step (issue 24; its float32 scores round differently from the tensor path's, and the
    # PatchMatch levels are chaotic under rounding). This single 30-step run is a noisy measure: over train.seed
    # 0, 1, 2 the ratio was 1.03 / 0.83 / 0.88 (fused) and 0.80 / 0.80 / 1.00 (tensor path) on an AMX Xeon.
    # A model that does not learn stays near 1.0.
    assert sum(after) < 0.9 * sum(before)


def test_checkpoint_resumes_at_the_right_step_with_identical_optimizer_state(run, tmp_path, vgg):
    trainer, *_ = run
    folder = trainer.checkpoint_dir(CHECKPOINT)
    assert (folder / "pipeline" / "model_index.json").is_file()
    resumed = Trainer(tiny_config(tmp_path / "resumed", vgg))
    assert resumed.resume(str(folder)) and resumed.state.step == CHECKPOINT
    opt_g, opt_d, weights = trainer.saved[CHECKPOINT]
    for saved, loaded in ((opt_g, resumed.opt_g.state_dict()), (opt_d, resumed.opt_d.state_dict())):
        assert saved["param_groups"] == loaded["param_groups"]
        assert saved["state"].keys() == loaded["state"].keys()
        for index, entry in saved["state"].items():
            for name, value in entry.items():
                assert torch.equal(value, loaded["state"][index][name]), (index, name)
    for name, value in resumed.generator_module.state_dict().items():
        assert torch.equal(value, weights[name]), name
    # continuing from the checkpoint reproduces the uninterrupted run exactly
    resumed.train()
    assert resumed.state.step == STEPS
    assert [r for r in resumed.history if r["step"] > CHECKPOINT] == [r for r in trainer.history if r["step"] > CHECKPOINT]
    final = trainer.saved[STEPS][2]
    assert all(torch.equal(v, final[k]) for k, v in resumed.generator_module.state_dict().items())


def test_saved_pipeline_loads_and_matches_the_trained_networks(run):
    trainer, final, batch, *_ = run
    pipe = CoCosNetPipeline.from_pretrained(final)
    assert pipe.config.resolution == [64, 64] and "trained with pipeline_cocosnet" in pipe.config.origin
    assert "synthetic" in pipe.config.origin and pipe.config.dataset.startswith("synthetic data")
    assert "training_data: synthetic data" in (Path(final) / "README.md").read_text()  # the card says it too
    assert not any("parametrizations" in k for k in pipe.correspondence.state_dict())
    images = pipe(list(batch["label"][:2]), list(batch["exemplar"][:2]), list(batch["exemplar_label"][:2]), output_type="pt").images
    module = trainer.generator_module.eval()
    with torch.no_grad():
        warps = module.correspondence(batch["label"][:2], batch["exemplar"][:2], batch["exemplar_label"][:2]).warps
        expected = (module.translator(batch["label"][:2], warps) + 1) / 2
    module.train()
    torch.testing.assert_close(images, expected.clamp(0, 1), atol=1e-4, rtol=0)


def backward_generator_losses(trainer: Trainer, batch: dict) -> None:
    gen = trainer.generator_module
    out = gen(batch["label"], batch["exemplar"], batch["exemplar_label"], batch["image"], cycle=True)
    disc = trainer.accelerator.unwrap_model(trainer.discriminator)
    disc.requires_grad_(False)
    sum(trainer.generator_losses(batch, out).values()).backward()


@pytest.mark.parametrize("learn_gru", [False, True])
def test_gru_gradients_only_in_the_learning_mode(tmp_path, vgg, learn_gru):
    trainer = Trainer(tiny_config(tmp_path, vgg, **{"model.learn_gru": learn_gru}))
    patchmatch = trainer.generator_module.correspondence.patchmatch
    batch = default_collate([trainer.dataset[i] for i in range(2)])
    if not learn_gru:
        patchmatch.requires_grad_(True)  # even when asked for, as published: no gradient arrives
    backward_generator_losses(trainer, batch)
    grads = {name: p.grad for name, p in patchmatch.named_parameters()}
    if learn_gru:
        assert all(g is not None for g in grads.values())
        for part in ("init_hidden.0.weight", "update.gru.convz1.weight", "update.gru.convq2.weight", "update.flow_head.conv2.weight"):
            assert grads[part].abs().sum() > 0, part
        in_optimizer = {id(p) for group in trainer.opt_g.param_groups for p in group["params"]}
        assert all(id(p) in in_optimizer for p in patchmatch.parameters())
    else:
        assert all(g is None for g in grads.values())
    encoder = trainer.generator_module.correspondence.structure_aligner
    assert encoder.conv_in.parametrizations.weight.original.grad.abs().sum() > 0


def test_bf16_mixed_precision_and_gradient_accumulation(tmp_path, vgg):
    config = tiny_config(tmp_path, vgg, **{
        "train.mixed_precision": "bf16", "train.max_steps": 2, "train.gradient_accumulation_steps": 2,
        "train.log_every": 1, "train.checkpoint_every": 0, "train.sample_every": 0,
    })
    reset_accelerator_state()
    try:
        trainer = Trainer(config)
        trainer.train()
    finally:
        reset_accelerator_state()
    assert trainer.state.step == 2 and trainer.state.batches_in_epoch == 4
    assert all(math.isfinite(v) for row in trainer.history for v in row.values())


@pytest.mark.parametrize(
    "ours, expected", [({}, ("bf16", 3)), ({"train.mixed_precision": "no", "train.gradient_accumulation_steps": 2}, ("no", 2))],
    ids=["accelerate's setting when the config is silent", "the config's value when it gives one"],
)
def test_precision_and_accumulation_come_from_accelerate_unless_the_config_sets_them(tmp_path, vgg, monkeypatch, caplog, ours, expected):
    # what `accelerate launch --mixed_precision bf16 --gradient_accumulation_steps 3` passes to the process
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "3")
    config = tiny_config(tmp_path, vgg, **ours)
    reset_accelerator_state()
    try:
        with caplog.at_level("INFO", logger="pipeline_cocosnet.training"):
            trainer = Trainer(config)
        got = (trainer.accelerator.mixed_precision, trainer.accelerator.gradient_accumulation_steps)
    finally:
        reset_accelerator_state()
    assert got == expected
    source = "the training config" if ours else "accelerate's launch/config"
    assert f"mixed precision: {expected[0]}, from {source}" in caplog.text


def test_cli_train_command_runs_a_config_with_overrides(tmp_path, vgg, capsys):
    code = cocosnet_main([
        "train", "--config", str(CONFIGS / "train_synthetic.yaml"), "--output-dir", str(tmp_path / "cli"),
        "--max-steps", "2", "--learn-gru", "--set", "model.iterations=1", "--set", "data.num_samples=8",
        "--set", "train.checkpoint_every=0", "--set", "train.report_to=none",
    ])
    assert code == 0
    out, err = capsys.readouterr()
    assert "trained 2 steps" in out and "training: 100%" in err and "2/2" in err  # the progress bar
    pipe = CoCosNetPipeline.from_pretrained(tmp_path / "cli" / "pipeline")
    assert pipe.correspondence.config.learn_gru is True and "learning ConvGRU" in pipe.config.origin
    code = cocosnet_main(["train", "--config", str(CONFIGS / "train_synthetic.yaml"), "--set", "model.lr=1"])
    assert code == 2
    assert "unknown config key 'model.lr'" in capsys.readouterr().err


def test_missing_vgg_weights_stop_before_training(tmp_path, vgg):
    with pytest.raises(FileNotFoundError, match="VGG19 weights not found"):
        Trainer(tiny_config(tmp_path, vgg, **{"loss.vgg_weights": str(tmp_path / "vgg19_conv.pth")}))


def test_fine_tuning_starts_from_a_pipeline_and_a_published_layout_discriminator(run, tmp_path):
    from pipeline_cocosnet.training.config import ModelConfig
    from pipeline_cocosnet.training.model import build_discriminator, build_generator

    trainer, final, *_ = run
    config = ModelConfig(label_channels=4, ndf=8, init_pipeline=str(final), learn_gru=True)
    gen = build_generator(config)
    assert gen.correspondence.config.learn_gru is True and gen.correspondence.config.nef == 8
    assert all(p.requires_grad for p in gen.correspondence.patchmatch.parameters())
    plain = CoCosNetPipeline.from_pretrained(final).translator
    torch.testing.assert_close(gen.translator.conv_out.weight, plain.conv_out.weight)  # not spectrally normalised: as saved
    published = {}
    for key, value in trainer.accelerator.unwrap_model(trainer.discriminator).state_dict().items():
        for ours, theirs in ((".parametrizations.weight.original", ".weight_orig"), (".parametrizations.weight.0._u", ".weight_u"), (".parametrizations.weight.0._v", ".weight_v")):
            key = key.replace(ours, theirs)
        published[key] = value
    torch.save(published, tmp_path / "latest_net_D.pth")
    disc = build_discriminator(ModelConfig(label_channels=4, ndf=8, init_discriminator=str(tmp_path / "latest_net_D.pth")))
    assert torch.equal(disc.discriminator_1.model1[0].parametrizations.weight.original, published["discriminator_1.model1.0.weight_orig"])
