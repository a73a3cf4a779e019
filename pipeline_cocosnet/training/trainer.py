"""The training loop on 🤗 accelerate: one GPU, many GPUs, or CPU processes, same code.

Per step (per micro-batch under gradient accumulation): one generator forward; the D
step (D on concat(label, fake.detach()) ++ concat(label, real) in ONE forward, hinge loss);
then the G step with D frozen (again one D forward on fake ++ real, for the hinge and the
feature-matching losses) plus the VGG, contextual, domain-alignment, warp and cycle
losses. Adam with TTUR as released. Checkpoints are ``accelerator.save_state`` folders
(models, optimizers, RNGs, step counter) plus a ``CoCosNetPipeline`` with spectral norm
folded, loadable with ``CoCosNetPipeline.from_pretrained``; they are written atomically
(``checkpoints.py``), and SIGTERM/SIGINT stop the loop after a step with a checkpoint
(``interruption.py``; docs/training.md, "Interruption and resume").
"""

from __future__ import annotations

import copy
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import torch
from PIL import Image
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .. import __version__
from ..hub import looks_local
from ..pipeline import CoCosNetPipeline
from ..tasks import task_for_data
from .checkpoints import (
    MANIFEST,
    checkpoint_folder,
    commit_checkpoint,
    latest_complete_checkpoint,
    pause_for_tests,
    prune_checkpoints,
    remove_temporaries,
    temporary_folder,
    verify_checkpoint,
    write_manifest,
)
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
from .interruption import StopRequest, TrainingInterrupted
from .model import GeneratorOutput, TrainingGenerator, build_discriminator, build_generator
from .monitor import CSVLogger, grid_image, label_to_rgb, log_image_to_trackers, requested_trackers
from .spectral import folded_copy
from .vgg import VGG_LAYERS, load_vgg19

__all__ = ["Trainer", "TrainState", "train", "check_finite"]

logger = logging.getLogger("pipeline_cocosnet.training")


class TrainState:
    """What a checkpoint restores besides models/optimizers/RNGs: the counters and the propagation RNG.

    :meth:`state_dict` is saved by the main process only; :meth:`rank_state_dict` by every process
    (its own propagation RNG and the loss sums of the log interval in progress, so that a resumed
    run logs exactly what an uninterrupted one would).
    """

    def __init__(self, propagation_rng: torch.Generator):
        self.step = 0
        self.epoch = 0
        self.batches_in_epoch = 0
        self.propagation_rng = propagation_rng
        self.log_sums: dict[str, torch.Tensor] = {}
        self.log_count = 0

    def rank_state_dict(self) -> dict[str, Any]:
        return {
            "propagation_rng": self.propagation_rng.get_state(),
            "log_sums": {k: v.detach().cpu() for k, v in self.log_sums.items()},
            "log_count": self.log_count,
        }

    def load_rank_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.propagation_rng.set_state(state["propagation_rng"])
        self.log_sums = {k: v.to(device) for k, v in state["log_sums"].items()}
        self.log_count = int(state["log_count"])

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


#: the losses shown on the progress bar (all of them go to the log, the CSV and the trackers)
_BAR_LOSSES = ("G", "D", "G_warp")


class Trainer:
    """Builds data, networks, optimizers and the accelerator from a :class:`TrainConfig`; :meth:`train` runs it.

    ``trackers``: accelerate ``GeneralTracker`` instances of your own, logged to beside ``train.report_to``'s.
    """

    def __init__(self, config: TrainConfig, trackers: Sequence[Any] = ()):
        from accelerate import Accelerator, DistributedDataParallelKwargs
        from accelerate.utils import DataLoaderConfiguration, GradientAccumulationPlugin, ProjectConfiguration, set_seed

        self.config = config
        run = config.train
        if run.max_steps is None and run.epochs is None:
            raise ValueError("set train.max_steps or train.epochs")
        self.output_dir = Path(run.output_dir)
        log_with = [*requested_trackers(run.report_to, run.tensorboard), *trackers] or None
        # None leaves both to accelerate (its launcher's flags, `accelerate config`, ACCELERATE_* variables); a
        # value of ours goes in as a plugin, the one form accelerate does not override from its environment
        accumulation = (
            {} if run.gradient_accumulation_steps is None
            else {"gradient_accumulation_plugin": GradientAccumulationPlugin(num_steps=run.gradient_accumulation_steps)}
        )
        self.accelerator = Accelerator(
            mixed_precision=run.mixed_precision,
            **accumulation,
            cpu=run.cpu,
            log_with=log_with,
            project_config=ProjectConfiguration(project_dir=str(self.output_dir), logging_dir=str(self.output_dir / "logs")),
            dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=run.find_unused_parameters)],
        )
        accelerator = self.accelerator
        if accelerator.is_main_process:
            for name, ours, theirs in (
                ("mixed precision", run.mixed_precision, accelerator.mixed_precision),
                ("gradient accumulation steps", run.gradient_accumulation_steps, accelerator.gradient_accumulation_steps),
            ):
                source = "the training config" if ours is not None else "accelerate's launch/config (the training config leaves it)"
                logger.info("%s: %s, from %s", name, theirs, source)
        set_seed(run.seed)

        self.dataset = build_dataset(config.data, config.model.label_channels)
        data_task = task_for_data(config.data.kind)
        #: the task the model is trained for (the saved pipeline's structure encoder): the config's, else the data's
        self.task: Optional[str] = config.train.task or (data_task.name if data_task else None)
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
        self.discriminator_scaler = self.separate_loss_scales()

        weights = config.loss
        self.vgg = None
        if weights.vgg_feature or weights.perceptual or weights.contextual:
            if weights.perceptual_layer not in VGG_LAYERS:
                raise ValueError(f"loss.perceptual_layer must be one of {VGG_LAYERS}, got {weights.perceptual_layer!r}")
            self.vgg = load_vgg19(weights.vgg_weights).to(accelerator.device)

        self.steps_per_epoch = max(1, len(self.loader) // accelerator.gradient_accumulation_steps)
        self.total_steps = run.max_steps if run.max_steps is not None else run.epochs * self.steps_per_epoch
        self.csv = CSVLogger(self.output_dir / "losses.csv") if accelerator.is_main_process else None
        self.log_with = log_with  # trackers start in train(), once the resumed step is known
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ pieces

    @property
    def generator_module(self) -> TrainingGenerator:
        return self.accelerator.unwrap_model(self.generator)

    def separate_loss_scales(self) -> Optional[Any]:
        """fp16: give D its own gradient scaler (a copy of accelerate's), so that an overflow in D's
        gradients halves D's loss scale only, not G's; checkpointed with the run. None without a scaler."""
        accelerator = self.accelerator
        if accelerator.scaler is None:
            return None
        scaler = copy.deepcopy(accelerator.scaler)
        self.opt_d.scaler = scaler
        accelerator.register_for_checkpointing(scaler)
        return scaler

    def discriminator_step(self, batch: dict[str, Any], out: GeneratorOutput) -> dict[str, torch.Tensor]:
        """Hinge loss on D for one micro-batch (fake detached); backward and (when synced) the D update."""
        label, image = batch["label"], batch["image"]
        fake = out.fake.detach().to(image.dtype)
        pred = self.discriminator(torch.cat([torch.cat([label, fake], 1), torch.cat([label, image], 1)], 0))
        pred_fake, pred_real = _split(pred)
        loss = self.config.loss.gan * hinge_discriminator_loss(pred_real, pred_fake)
        generator_scaler = self.accelerator.scaler
        if self.discriminator_scaler is not None:  # accelerator.backward scales with accelerator.scaler
            self.accelerator.scaler = self.discriminator_scaler
        try:
            self.accelerator.backward(loss)
        finally:
            self.accelerator.scaler = generator_scaler
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
        return checkpoint_folder(self.output_dir / "checkpoints", step)

    def save_pipeline(self, folder: Path) -> Path:
        """Save a :class:`CoCosNetPipeline` (spectral norm folded) to ``folder`` (main process only)."""
        if self.accelerator.is_main_process:
            module = self.generator_module
            config = self.config
            data = config.data
            where = f"{data.kind} data" + (f" from {Path(data.root).name}/" if data.root else f" ({data.num_samples} scenes)")
            origin = (
                f"trained with pipeline_cocosnet {__version__} (cocosnet train) on {where}, {self.state.step} steps of "
                f"batch {config.train.batch_size}×{self.accelerator.num_processes}×{self.accelerator.gradient_accumulation_steps}"
                + (", learning ConvGRU" if config.model.learn_gru else "")
            )
            pipe = CoCosNetPipeline(
                torch.nn.Module.to(folded_copy(module.correspondence), "cpu"),
                torch.nn.Module.to(folded_copy(module.translator), "cpu"),
                task=self.task,
                resolution=tuple(data.size),
                license=config.train.license,
                origin=origin,
                dataset=where,
                base_model=_hub_id_or_empty(config.model.init_pipeline),
            )
            pipe.save_pretrained(folder)
        self.accelerator.wait_for_everyone()
        return folder

    def save_checkpoint(self) -> Path:
        """``accelerator.save_state`` + the pipeline, atomically in ``checkpoints/step-NNNNNNN``; prunes old ones.

        All processes write into ``checkpoints/.step-NNNNNNN.tmp``; the main process then writes the
        manifest (sizes, SHA-256) and renames the folder into place. Pruning happens after that.
        """
        accelerator = self.accelerator
        step = self.state.step
        final = self.checkpoint_dir(step)
        temporary = temporary_folder(final.parent, step)
        if accelerator.is_main_process:
            shutil.rmtree(temporary, ignore_errors=True)
            temporary.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(temporary))
        torch.save(self.state.rank_state_dict(), temporary / f"rank_state_{accelerator.process_index}.pt")
        self.save_pipeline(temporary / "pipeline")  # ends with wait_for_everyone
        if accelerator.is_main_process:
            pause_for_tests(step, temporary)
            write_manifest(temporary, step)
            commit_checkpoint(temporary, final)
            limit = self.config.train.checkpoints_total_limit
            if limit:
                prune_checkpoints(final.parent, limit, final)
        accelerator.wait_for_everyone()
        return final

    def resume(self, where: Optional[str]) -> bool:
        """Load a checkpoint (``"latest"``: the newest complete one, or a folder); returns whether one was loaded.

        Also drops what the interrupted run logged past the checkpoint's step (CSV rows, sample grids).
        """
        checkpoints = self.output_dir / "checkpoints"
        if self.accelerator.is_main_process:
            for stale in remove_temporaries(checkpoints):
                logger.warning("removed %s: a checkpoint write that did not finish", stale)
        if not where:
            return False
        if where == "latest":
            chosen: list[Optional[str]] = [None]
            if self.accelerator.is_main_process:  # one process reads the hashes; all load what it chose
                folder, skipped = latest_complete_checkpoint(checkpoints)
                for path, why in skipped:
                    logger.warning("skipping checkpoint %s: %s", path, why)
                chosen = [str(folder) if folder is not None else None]
            if self.accelerator.num_processes > 1:
                from accelerate.utils import broadcast_object_list

                broadcast_object_list(chosen)
            folder = Path(chosen[0]) if chosen[0] is not None else None
            if folder is None:
                logger.info("no complete checkpoint under %s: starting from scratch", checkpoints)
                return False
        else:
            folder = Path(where)
            if not folder.is_dir():
                raise FileNotFoundError(f"checkpoint folder not found: {folder}")
            problem = verify_checkpoint(folder)
            if problem is not None and (folder / MANIFEST).is_file():
                raise ValueError(f"checkpoint {folder} is incomplete: {problem}")
            if problem is not None and self.accelerator.is_main_process:
                logger.warning("cannot verify checkpoint %s (%s): loading it as it is", folder, problem)
        self.accelerator.load_state(str(folder))
        rank_state = folder / f"rank_state_{self.accelerator.process_index}.pt"
        if rank_state.is_file():
            # tensors (the RNG state, the log sums) and an int: no pickled objects needed
            self.state.load_rank_state_dict(torch.load(rank_state, weights_only=True), self.accelerator.device)
        if self.accelerator.is_main_process:
            self._drop_logs_after(self.state.step)
            logger.info("resumed from %s at step %d", folder, self.state.step)
        return True

    def _drop_logs_after(self, step: int) -> None:
        """CSV rows and sample grids past ``step`` came from the run that was interrupted: the resumed run redoes them."""
        if self.csv is not None and (dropped := self.csv.drop_after(step)):
            logger.info("dropped %d rows past step %d from %s", dropped, step, self.csv.path)
        samples = self.output_dir / "samples"
        if samples.is_dir():
            for png in samples.glob("step-*.png"):
                if png.stem[5:].isdigit() and int(png.stem[5:]) > step:
                    png.unlink()

    def _start_trackers(self) -> None:
        """The trackers of ``report_to``; after a resume, TensorBoard events past the resumed step are purged."""
        if self.log_with:
            config = {k: v for k, v in _flat(self.config.to_dict()).items() if v is not None}
            purge = {"tensorboard": {"purge_step": self.state.step + 1}} if self.state.step else {}
            self.accelerator.init_trackers("cocosnet", config=config, init_kwargs=purge)

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
        """A grid of the last batch (label | exemplar | full-res warp | generated | real): a PNG, and to the trackers."""
        if not self.accelerator.is_main_process or not hasattr(self, "last_batch"):
            return None
        batch, out = self.last_batch, self.last_output
        grid = grid_image([label_to_rgb(batch["label"], self.task), batch["exemplar"], out.warps[-1], out.fake, batch["image"]])
        path = self.output_dir / "samples" / f"step-{self.state.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).save(path)
        log_image_to_trackers(self.accelerator.trackers, "samples", grid, self.state.step)
        return path

    def train(self) -> Path:
        """Run to ``total_steps`` (resuming as configured); returns the final pipeline folder.

        On SIGTERM/SIGINT: finishes the optimizer step, saves a checkpoint, flushes the logs and raises
        :class:`~.interruption.TrainingInterrupted` (all processes stop after the same step).
        """
        with StopRequest() as stop:
            return self._train(stop)

    def _train(self, stop: StopRequest) -> Path:
        run = self.config.train
        accelerator = self.accelerator
        self.resume(run.resume)
        self._start_trackers()
        state = self.state
        bar = tqdm(  # main process only; TQDM_DISABLE=1 hides it
            total=self.total_steps, initial=state.step, desc="training", unit="step", dynamic_ncols=True,
            disable=not accelerator.is_local_main_process,
        )  # fmt: skip
        try:
            self._loop(stop, bar)
        finally:
            bar.close()
        if self.last_saved != state.step:
            self.save_checkpoint()
        self.save_samples()
        final = self.save_pipeline(self.output_dir / "pipeline")
        accelerator.end_training()
        return final

    def _loop(self, stop: StopRequest, bar: tqdm) -> None:
        """Optimizer steps until ``total_steps`` (or a stop request): log, sample and checkpoint on schedule."""
        run = self.config.train
        accelerator = self.accelerator
        state = self.state
        self.last_saved = None
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
                    state.log_sums[k] = state.log_sums.get(k, 0) + v
                state.log_count += 1
                if not accelerator.sync_gradients:
                    continue
                state.step += 1
                bar.update(1)
                check_finite(logs, state.step)
                if (run.log_every and state.step % run.log_every == 0) or state.step == self.total_steps:
                    row = self._log(state.log_sums, state.log_count)
                    bar.set_postfix({name: f"{value:.3g}" for name, value in row.items() if name in _BAR_LOSSES}, refresh=False)
                    state.log_sums, state.log_count = {}, 0
                if run.sample_every and state.step % run.sample_every == 0:
                    self.save_samples()
                if run.checkpoint_every and state.step % run.checkpoint_every == 0:
                    self.save_checkpoint()
                    self.last_saved = state.step
                if state.step >= self.total_steps:
                    finished_epoch = state.batches_in_epoch >= len(self.loader)
                    break
                if stop.agreed(accelerator):
                    self._stop(stop, saved=self.last_saved == state.step)
            if finished_epoch:
                state.epoch += 1
                state.batches_in_epoch = 0

    def _stop(self, stop: StopRequest, saved: bool) -> None:
        """Save (unless this step was just saved), flush the logs, raise :class:`TrainingInterrupted`."""
        folder = self.checkpoint_dir(self.state.step) if saved else self.save_checkpoint()
        self.accelerator.end_training()  # flushes and closes the trackers
        signal_name = stop.signal_name or "a stop signal to another process"
        if self.accelerator.is_main_process:
            logger.info("stopped by %s after step %d; checkpoint %s", signal_name, self.state.step, folder)
        raise TrainingInterrupted(signal_name, self.state.step, folder)


def train(config: TrainConfig) -> Path:
    """Train as configured; returns the folder of the final pipeline."""
    return Trainer(config).train()


def check_finite(losses: dict[str, torch.Tensor], step: int) -> None:
    """Raise FloatingPointError naming every non-finite loss (scalars); one host sync, not one per loss."""
    if not losses:
        return
    finite = torch.isfinite(torch.stack([v.detach().float().reshape(()) for v in losses.values()]))
    if bool(finite.all()):
        return
    bad = [name for name, ok in zip(losses, finite.tolist()) if not ok]
    raise FloatingPointError(f"non-finite loss at step {step}: {', '.join(bad)}")


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value) if isinstance(value, list) else value
    return flat


def _hub_id_or_empty(name: str | None) -> str:
    """``name`` when it is a Hub repo id (the model card's ``base_model``), else ``""`` (local folders stay private)."""
    return name if name and not looks_local(name) else ""
