"""The training loop on 🤗 accelerate: one GPU, many GPUs, or CPU processes, same code.

Per step (per micro-batch under gradient accumulation): one generator forward; the D
step (D on concat(label, fake.detach()) ++ concat(label, real) in ONE forward, hinge loss);
then the G step with D frozen (again one D forward on fake ++ real, for the hinge and the
feature-matching losses) plus the VGG, contextual, domain-alignment, warp and cycle
losses. Adam with TTUR as released. Checkpoints are ``accelerator.save_state`` folders
(models, optimizers, RNGs, step counter) plus a ``CoCosNetPipeline`` with spectral norm
folded, loadable with ``CoCosNetPipeline.from_pretrained``.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any, Optional

import torch
from torch.utils.data import DataLoader

from .. import __version__
from ..pipeline import CoCosNetPipeline
from .config import TrainConfig
from .data import build_dataset
from .losses import (
    contextual_style_loss,
    cycle_warp_loss,
    discriminator_feature_matching_loss,
    domain_alignment_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    perceptual_loss,
    vgg_feature_matching_loss,
    warp_loss,
)
from .model import GeneratorOutput, TrainingGenerator, build_discriminator, build_generator
from .monitor import CSVLogger, label_to_rgb, sample_grid
from .spectral import folded_copy
from .vgg import VGG_LAYERS, load_vgg19

__all__ = ["Trainer", "TrainState", "train"]

logger = logging.getLogger("pipeline_cocosnet.training")

CHECKPOINT_PATTERN = re.compile(r"^step-(\d+)$")


class TrainState:
    """What a checkpoint restores besides models/optimizers/RNGs: the counters and the propagation RNG."""

    def __init__(self, propagation_rng: torch.Generator):
        self.step = 0
        self.epoch = 0
        self.batches_in_epoch = 0
        self.propagation_rng = propagation_rng

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batches_in_epoch": self.batches_in_epoch,
            "propagation_rng": self.propagation_rng.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batches_in_epoch = int(state["batches_in_epoch"])
        self.propagation_rng.set_state(state["propagation_rng"])


def _split(pred: list[list[torch.Tensor]]) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
    """D outputs on (fake ++ real) → (fake part, real part)."""
    fake = [[t[: t.shape[0] // 2] for t in scale] for scale in pred]
    real = [[t[t.shape[0] // 2 :] for t in scale] for scale in pred]
    return fake, real


class Trainer:
    """Builds data, networks, optimizers and the accelerator from a :class:`TrainConfig`; :meth:`train` runs it."""

    def __init__(self, config: TrainConfig):
        from accelerate import Accelerator, DistributedDataParallelKwargs
        from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed

        self.config = config
        run = config.train
        if run.max_steps is None and run.epochs is None:
            raise ValueError("set train.max_steps or train.epochs")
        self.output_dir = Path(run.output_dir)
        log_with = "tensorboard" if run.tensorboard and _tensorboard_available() else None
        self.accelerator = Accelerator(
            mixed_precision=run.mixed_precision,
            gradient_accumulation_steps=run.gradient_accumulation_steps,
            cpu=run.cpu,
            log_with=log_with,
            project_config=ProjectConfiguration(project_dir=str(self.output_dir), logging_dir=str(self.output_dir / "logs")),
            dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=run.find_unused_parameters)],
        )
        accelerator = self.accelerator
        set_seed(run.seed)

        self.dataset = build_dataset(config.data, config.model.label_channels)
        if len(self.dataset) < run.batch_size * accelerator.num_processes:
            raise ValueError(
                f"{len(self.dataset)} training samples cannot fill one batch of {run.batch_size} on each of "
                f"{accelerator.num_processes} processes"
            )
        loader = DataLoader(
            self.dataset,
            batch_size=run.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=config.data.num_workers,
            generator=torch.Generator().manual_seed(run.seed),
        )
        generator = build_generator(config.model, seed=run.seed + accelerator.process_index)
        discriminator = build_discriminator(config.model)
        optim = config.optim
        betas = (optim.betas[0], optim.betas[1])
        g_params = [p for p in generator.parameters() if p.requires_grad]
        opt_g = torch.optim.Adam(g_params, lr=optim.lr_generator, betas=betas, eps=optim.eps_generator)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=optim.lr_discriminator, betas=betas, eps=optim.eps_discriminator)
        self.generator, self.discriminator, self.opt_g, self.opt_d, self.loader = accelerator.prepare(
            generator, discriminator, opt_g, opt_d, loader
        )
        self.state = TrainState(generator.propagation_rng)
        accelerator.register_for_checkpointing(self.state)

        weights = config.loss
        self.vgg = None
        if weights.vgg_feature or weights.perceptual or weights.contextual:
            if weights.perceptual_layer not in VGG_LAYERS:
                raise ValueError(f"loss.perceptual_layer must be one of {VGG_LAYERS}, got {weights.perceptual_layer!r}")
            self.vgg = load_vgg19(weights.vgg_weights).to(accelerator.device)

        self.steps_per_epoch = max(1, len(self.loader) // run.gradient_accumulation_steps)
        self.total_steps = run.max_steps if run.max_steps is not None else run.epochs * self.steps_per_epoch
        self.csv = CSVLogger(self.output_dir / "losses.csv") if accelerator.is_main_process else None
        if log_with:
            accelerator.init_trackers("cocosnet", config={k: v for k, v in _flat(config.to_dict()).items() if v is not None})
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ pieces

    @property
    def generator_module(self) -> TrainingGenerator:
        return self.accelerator.unwrap_model(self.generator)

    def discriminator_step(self, batch: dict[str, Any], out: GeneratorOutput) -> dict[str, torch.Tensor]:
        """Hinge loss on D for one micro-batch (fake detached); backward and (when synced) the D update."""
        label, image = batch["label"], batch["image"]
        fake = out.fake.detach().to(image.dtype)
        pred = self.discriminator(torch.cat([torch.cat([label, fake], 1), torch.cat([label, image], 1)], 0))
        pred_fake, pred_real = _split(pred)
        loss = self.config.loss.gan * hinge_discriminator_loss(pred_real, pred_fake)
        self.accelerator.backward(loss)
        self.opt_d.step()
        self.opt_d.zero_grad(set_to_none=True)
        return {"D": loss.detach()}

    def generator_losses(self, batch: dict[str, Any], out: GeneratorOutput) -> dict[str, torch.Tensor]:
        """All weighted G losses of one micro-batch (D frozen; called with D's requires_grad off)."""
        w = self.config.loss
        label, image, target = batch["label"], batch["image"], batch["warp_target"]
        same = batch["same_content"]
        disc = self.accelerator.unwrap_model(self.discriminator)
        fake = out.fake.to(image.dtype)
        losses: dict[str, torch.Tensor] = {}
        pred_fake, pred_real = _split(disc(torch.cat([torch.cat([label, fake], 1), torch.cat([label, image], 1)], 0)))
        losses["G_gan"] = w.gan * hinge_generator_loss(pred_fake)
        if w.gan_feature:
            losses["G_gan_feature"] = w.gan_feature * discriminator_feature_matching_loss(pred_real, pred_fake)
        if self.vgg is not None:
            with self.accelerator.autocast():
                fake_features = self.vgg(fake)
                with torch.no_grad():
                    target_features = self.vgg(target)
                    exemplar_features = self.vgg(batch["exemplar"]) if w.contextual else None
            if w.vgg_feature:
                losses["G_vgg_feature"] = w.vgg_feature * vgg_feature_matching_loss(fake_features, target_features, same)
            if w.perceptual:
                i = VGG_LAYERS.index(w.perceptual_layer)
                losses["G_perceptual"] = w.perceptual * perceptual_loss(fake_features[i].float(), target_features[i].float())
            if w.contextual:
                losses["G_contextual"] = w.contextual * contextual_style_loss(fake_features, exemplar_features)
        if w.domain_alignment:
            losses["G_domain_alignment"] = w.domain_alignment * domain_alignment_loss(
                [f.float() for f in out.structure_features], [f.float() for f in out.image_features]
            )
        if w.warp:
            losses["G_warp"] = w.warp * warp_loss(out.warps, target, same)
        if w.warp_cycle:
            losses["G_warp_cycle"] = w.warp_cycle * cycle_warp_loss(out.cycle, batch["exemplar"])
        return losses

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One micro-batch: generator forward, D step, G step (updates happen when gradients sync)."""
        w = self.config.loss
        accelerator = self.accelerator
        with accelerator.accumulate(self.generator, self.discriminator):
            out = self.generator(
                batch["label"],
                batch["exemplar"],
                batch["exemplar_label"],
                batch["image"] if w.domain_alignment else None,
                cycle=bool(w.warp_cycle),
            )
            logs = self.discriminator_step(batch, out)
            disc = accelerator.unwrap_model(self.discriminator)
            disc.requires_grad_(False)
            try:
                losses = self.generator_losses(batch, out)
            finally:
                disc.requires_grad_(True)
            total = sum(losses.values())
            accelerator.backward(total)
            self.opt_g.step()
            self.opt_g.zero_grad(set_to_none=True)
        self.last_batch, self.last_output = batch, out
        return {**logs, **{k: v.detach() for k, v in losses.items()}, "G": total.detach()}

    @torch.no_grad()
    def warp_errors(self, batch: dict[str, Any]) -> list[float]:
        """Per level, the L1 between the warp and the pooled warp target on ``batch`` (eval mode, no update)."""
        module = self.generator_module
        was_training = module.training
        module.eval()
        try:
            device = self.accelerator.device
            inputs = [batch[k].to(device) for k in ("label", "exemplar", "exemplar_label")]
            out = module(*inputs)
            target = batch["warp_target"].to(device)
            return [warp_loss([w], target).item() for w in out.warps]
        finally:
            module.train(was_training)

    # ------------------------------------------------------------------ saving

    def checkpoint_dir(self, step: int) -> Path:
        return self.output_dir / "checkpoints" / f"step-{step:07d}"

    def save_pipeline(self, folder: Path) -> Path:
        """Save a :class:`CoCosNetPipeline` (spectral norm folded) to ``folder`` (main process only)."""
        if self.accelerator.is_main_process:
            module = self.generator_module
            config = self.config
            data = config.data
            where = f"{data.kind} data" + (f" from {Path(data.root).name}/" if data.root else f" ({data.num_samples} scenes)")
            origin = (
                f"trained with pipeline_cocosnet {__version__} (cocosnet train) on {where}, {self.state.step} steps of "
                f"batch {config.train.batch_size}×{self.accelerator.num_processes}×{config.train.gradient_accumulation_steps}"
                + (", learning ConvGRU" if config.model.learn_gru else "")
            )
            pipe = CoCosNetPipeline(
                torch.nn.Module.to(folded_copy(module.correspondence), "cpu"),
                torch.nn.Module.to(folded_copy(module.translator), "cpu"),
                task=config.train.task or self.dataset.task,
                resolution=tuple(data.size),
                license=config.train.license,
                origin=origin,
            )
            pipe.save_pretrained(folder)
        self.accelerator.wait_for_everyone()
        return folder

    def save_checkpoint(self) -> Path:
        """``accelerator.save_state`` + the pipeline, in ``checkpoints/step-NNNNNNN``; prunes old ones."""
        folder = self.checkpoint_dir(self.state.step)
        self.accelerator.save_state(str(folder))
        self.save_pipeline(folder / "pipeline")
        limit = self.config.train.checkpoints_total_limit
        if self.accelerator.is_main_process and limit:
            for old in _checkpoints(self.output_dir)[:-limit]:
                shutil.rmtree(old, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        return folder

    def resume(self, where: Optional[str]) -> bool:
        """Load a checkpoint (``"latest"`` or a folder); returns whether one was loaded."""
        if not where:
            return False
        if where == "latest":
            found = _checkpoints(self.output_dir)
            if not found:
                logger.info("no checkpoint under %s: starting from scratch", self.output_dir / "checkpoints")
                return False
            folder = found[-1]
        else:
            folder = Path(where)
            if not folder.is_dir():
                raise FileNotFoundError(f"checkpoint folder not found: {folder}")
        self.accelerator.load_state(str(folder))
        if self.accelerator.is_main_process:
            logger.info("resumed from %s at step %d", folder, self.state.step)
        return True

    # ------------------------------------------------------------------ loop

    def _log(self, sums: dict[str, torch.Tensor], count: int) -> dict[str, float]:
        names = sorted(sums)
        stacked = torch.stack([sums[n].float() / count for n in names])
        values = self.accelerator.reduce(stacked, reduction="mean")
        row = {n: float(v) for n, v in zip(names, values.tolist())}
        self.history.append({"step": self.state.step, **row})
        if self.csv is not None:
            self.csv.log(self.state.step, row)
        self.accelerator.log(row, step=self.state.step)
        if self.accelerator.is_main_process:
            logger.info("step %d: %s", self.state.step, " ".join(f"{k} {v:.4g}" for k, v in row.items()))
        return row

    def save_samples(self) -> Optional[Path]:
        """A PNG grid of the last batch: label | exemplar | full-res warp | generated | real."""
        if not self.accelerator.is_main_process or not hasattr(self, "last_batch"):
            return None
        batch, out = self.last_batch, self.last_output
        task = self.config.train.task or self.dataset.task
        columns = [label_to_rgb(batch["label"], task), batch["exemplar"], out.warps[-1], out.fake, batch["image"]]
        return sample_grid(columns, self.output_dir / "samples" / f"step-{self.state.step:07d}.png")

    def train(self) -> Path:
        """Run to ``total_steps`` (resuming as configured); returns the final pipeline folder."""
        run = self.config.train
        accelerator = self.accelerator
        self.resume(run.resume)
        state = self.state
        sums: dict[str, torch.Tensor] = {}
        count = 0
        last_saved = None
        while state.step < self.total_steps:
            self.dataset.set_epoch(state.epoch)
            if hasattr(self.loader, "set_epoch"):
                self.loader.set_epoch(state.epoch)
            loader = self.loader
            if state.batches_in_epoch:
                loader = accelerator.skip_first_batches(self.loader, state.batches_in_epoch)
            finished_epoch = True
            for batch in loader:
                logs = self.train_step(batch)
                state.batches_in_epoch += 1
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0) + v
                count += 1
                if not accelerator.sync_gradients:
                    continue
                state.step += 1
                if not all(torch.isfinite(v) for v in logs.values()):
                    bad = [k for k, v in logs.items() if not torch.isfinite(v)]
                    raise FloatingPointError(f"non-finite loss at step {state.step}: {', '.join(bad)}")
                if (run.log_every and state.step % run.log_every == 0) or state.step == self.total_steps:
                    self._log(sums, count)
                    sums, count = {}, 0
                if run.sample_every and state.step % run.sample_every == 0:
                    self.save_samples()
                if run.checkpoint_every and state.step % run.checkpoint_every == 0:
                    self.save_checkpoint()
                    last_saved = state.step
                if state.step >= self.total_steps:
                    finished_epoch = state.batches_in_epoch >= len(self.loader)
                    break
            if finished_epoch:
                state.epoch += 1
                state.batches_in_epoch = 0
        if last_saved != state.step:
            self.save_checkpoint()
        self.save_samples()
        final = self.save_pipeline(self.output_dir / "pipeline")
        accelerator.end_training()
        return final


def train(config: TrainConfig) -> Path:
    """Train as configured; returns the folder of the final pipeline."""
    return Trainer(config).train()


def _checkpoints(output_dir: Path) -> list[Path]:
    folder = output_dir / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m[1]), p) for p in folder.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value) if isinstance(value, list) else value
    return flat


def _tensorboard_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None or importlib.util.find_spec("tensorboardX") is not None
