"""`sam2 train`: fine-tune SAM 2 (or train a config from scratch) on images, videos, or both.

Which samples a step takes is schedule.py's (one dataset, or several mixed in every step). Each
sample gets its own random generator seeded by (seed, dataset, pass, index), for its augmentation and
its simulated prompts, so a run is reproducible and a DDP run (torchrun, gloo or nccl) computes the
same update as one process with the same global batch. The loss is the mean over samples of
SAM 2's multi-step loss. Checkpoints are in the official format ({"model": state_dict}, official
names): Meta's code loads weights/best.pt and weights/last.pt with strict=True.
"""

import csv
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console

from sam2cli.engine.device import autocast, select_device
from sam2cli.engine.progress import rated_progress
from sam2cli.engine.run import open_run_dir
from sam2cli.errors import UsageError
from .batches import clip_item, image_item, stack_images
from .evaluate import evaluate
from .losses import SAM2Loss
from .optim import build_optimizer, freeze, lr_factor, set_lr
from .options import StepOptions, TrainOptions
from .setup import load_train_model, open_splits
from .schedule import Part, per_dataset, sample_gen, step_parts
from .steps import prompted_frames, spans_of, video_clip

COLUMNS = ["epoch", "train/loss", "train/mask", "train/dice", "train/iou", "train/class", "lr", "seconds"]


class StepLoss(torch.nn.Module):
    """One training step's loss as a module, so that DistributedDataParallel can wrap it:
    forward(parts) -> (mean over samples of SAM 2's core loss, logged terms). A part holds one
    dataset's samples (see schedule.py); images and video clips can share a step."""

    def __init__(self, model, loss_fn: SAM2Loss, opts: StepOptions, datasets: List, videos: List[bool]):
        super().__init__()
        self.model, self.loss_fn, self.opts, self.datasets, self.videos = model, loss_fn, opts, datasets, videos

    def clip_loss(self, dataset, gen: torch.Generator, index: int) -> Optional[Dict[str, torch.Tensor]]:
        dev = self.model.no_obj_ptr.device
        frames, masks = clip_item(dataset[index], self.model.image_size, gen, self.opts.augment)
        if masks.shape[1] == 0:
            return None
        preds = video_clip(self.model, frames.to(dev), masks[:, :, None].to(dev), gen, self.opts.n_correct)
        return self.loss_fn(preds, masks.to(dev))

    def image_losses(self, dataset, gens: List[torch.Generator], indices: List[int]) -> List[Dict[str, torch.Tensor]]:
        """One loss per image; the images go through the encoder, and their objects through the
        decoder, together."""
        dev, size = self.model.no_obj_ptr.device, self.model.image_size
        samples = []
        for gen, i in zip(gens, indices):
            image, masks = image_item(dataset[i], size, gen, self.opts.max_objects, self.opts.augment)
            if len(masks):
                samples.append((gen, image, masks))
        if not samples:
            return []
        images, gt, owner = stack_images([(x, m) for _, x, m in samples])  # gt (B, 1, S, S)
        gt = gt.to(dev)
        feats = self.model.encode_image(images.to(dev)).select(owner.to(dev))
        spans = spans_of([len(m) for _, _, m in samples])
        done = prompted_frames(self.model, feats, gt, spans, [g for g, _, _ in samples], self.opts.n_correct, 1.0)
        return [self.loss_fn([p.steps], gt[s, 0][None]) for p, s in zip(done, spans)]

    def forward(self, parts: List[Part]):
        losses = []
        for part in parts:
            dataset = self.datasets[part.source]
            gens = [sample_gen(self.opts.seed, part.source, pass_no, i) for pass_no, i in part.items]
            indices = [i for _, i in part.items]
            if self.videos[part.source]:
                clips = (self.clip_loss(dataset, g, i) for g, i in zip(gens, indices))
                losses += [l for l in clips if l is not None]
            else:
                losses += self.image_losses(dataset, gens, indices)
        zero = sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
        if not losses:
            return zero, {}
        core = torch.stack([l["core_loss"] for l in losses]).mean() + zero
        logs = {k: float(torch.stack([l[k].detach() for l in losses]).mean())
                for k in ("core_loss", "loss_mask", "loss_dice", "loss_iou", "loss_class")}
        return core, logs


class Trainer:
    def __init__(self, opts: TrainOptions, console: Console):
        self.opts, self.console = opts, console
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = select_device(opts.device or ("cpu" if self.world > 1 and not torch.cuda.is_available() else None))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        torch.manual_seed(opts.step.seed)
        self.model, self.start_epoch, resume_state = load_train_model(opts, self.device)
        self.size = self.model.image_size
        self.trains, self.vals, self.videos = open_splits(opts)
        self.batches = per_dataset(opts.batch, len(self.trains))  # bad sizes fail before any output
        if self.world > 1 and any(b % self.world for b in self.batches):
            raise UsageError(f"batch={opts.batch} must be a multiple of the {self.world} processes")
        if opts.freeze:
            prefixes = [opts.freeze] if isinstance(opts.freeze, str) else list(opts.freeze)
            if not freeze(self.model, prefixes):
                raise UsageError(f"freeze={opts.freeze} matches no parameter; e.g. freeze=image_encoder")
        self.opt = build_optimizer(self.model, opts.lr0, opts.weight_decay)
        self.best = -1.0
        if resume_state:
            self.opt.load_state_dict(resume_state["optimizer"])
            self.best = float(resume_state.get("best_fitness", -1.0))
        loss_fn = SAM2Loss()
        loss_fn.sync_num_objects = False  # per-sample normalisation: DDP == one process
        self.step_module = StepLoss(self.model, loss_fn, opts.step, self.trains, self.videos)
        if self.world > 1:
            self.step_module = torch.nn.parallel.DistributedDataParallel(self.step_module)
        self.run_dir = Path(resume_state["run_dir"]) if resume_state else None
        if self.rank == 0 and self.run_dir is None:
            where = opts.run_dir
            self.run_dir = open_run_dir(where, "train")
        self.steps_per_epoch = max(1, len(self.trains[0]) // self.batches[0])

    # ------------------------------------------------------------------ one step
    def train_step(self, epoch: int, parts: Union[List[int], List[Part]], step: int, total: int) -> Dict[str, float]:
        """One optimiser step on the step's samples: schedule.step_parts(), or indices into the first
        dataset. Each rank takes its share; DDP averages the gradients."""
        self.model.train()
        if parts and not isinstance(parts[0], Part):
            parts = [Part(0, [(epoch, int(i)) for i in parts])]
        mine = [p.share(self.rank, self.world) for p in parts]
        lr = set_lr(self.opt, self.opts.lr0, lr_factor(step, total, self.opts.warmup_steps, self.opts.lrf))
        self.opt.zero_grad(set_to_none=True)
        with autocast(self.device, self.opts.half):
            core, logs = self.step_module(mine)
        core.backward()  # DDP averages the gradients across ranks here
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], self.opts.clip_grad)
        self.opt.step()
        logs["lr"] = lr
        return logs

    # ------------------------------------------------------------------ epochs
    def fit(self) -> int:
        a = self.opts
        total = a.epochs * self.steps_per_epoch
        epoch = self.start_epoch
        try:
            for epoch in range(self.start_epoch, a.epochs):
                t0, sums, n = time.time(), {}, 0
                with rated_progress(self.console, f"epoch {epoch + 1}/{a.epochs}", self.steps_per_epoch, "step",
                                    disable=self.rank != 0) as advance:
                    for s in range(self.steps_per_epoch):
                        parts = step_parts([len(d) for d in self.trains], self.batches, a.step.seed, epoch, s,
                                           self.steps_per_epoch)
                        logs = self.train_step(epoch, parts, epoch * self.steps_per_epoch + s, total)
                        for k, v in logs.items():
                            sums[k] = sums.get(k, 0.0) + v
                        n += 1
                        advance(note=f"loss {logs.get('core_loss', float('nan')):.3f}")
                if self.rank == 0:
                    self.end_epoch(epoch, {k: v / n for k, v in sums.items()}, time.time() - t0)
                if self.world > 1:
                    dist.barrier()
        except KeyboardInterrupt:
            if self.rank == 0:
                self.save("last.pt", epoch - 1)
                self.console.print(f"interrupted: saved {self.run_dir / 'weights' / 'last.pt'}; resume=True continues")
            raise
        finally:
            if self.world > 1 and dist.is_initialized():
                dist.destroy_process_group()
        if self.rank == 0:
            self.console.print(f"done: {self.run_dir}/weights/best.pt and last.pt, results.csv, results.png")
        return 0

    def end_epoch(self, epoch: int, train: Dict[str, float], seconds: float) -> None:
        metrics, fits = {}, []
        for k, (ds, video) in enumerate(zip(self.vals, self.videos)):
            m = evaluate(self.model, ds, video, self.opts.val_samples, self.opts.step.max_objects)
            fits.append(m["JF"] if video else np.mean([m.get("miou_click", 0.0), m.get("miou_box", 0.0)]))
            metrics.update({(f"{key}{k}" if key in metrics else key): v for key, v in m.items()})
        fitness = float(np.mean(fits))
        row = {"epoch": epoch + 1, "train/loss": train.get("core_loss"), "train/mask": train.get("loss_mask"),
               "train/dice": train.get("loss_dice"), "train/iou": train.get("loss_iou"),
               "train/class": train.get("loss_class"), "lr": train.get("lr"), "seconds": round(seconds, 1)}
        row.update({f"val/{k}": v for k, v in metrics.items()})
        self.write_csv(row)
        if fitness > self.best:
            self.best = float(fitness)
            self.save("best.pt", epoch, full=False)
        self.save("last.pt", epoch)
        from sam2cli.io.plot import plot_results
        plot_results(self.run_dir / "results.csv", self.run_dir / "results.png")
        shown = " ".join(f"{k} {v:.3f}" for k, v in row.items() if k.startswith("val/"))
        self.console.print(f"epoch {epoch + 1}: loss {row['train/loss'] or float('nan'):.3f} {shown}")

    def write_csv(self, row: Dict[str, Any]) -> None:
        path = self.run_dir / "results.csv"
        rows = list(csv.DictReader(path.open())) if path.exists() else []
        rows.append({k: ("" if v is None else v) for k, v in row.items()})
        keys = list(dict.fromkeys(k for r in rows for k in r))
        from sam2cli.io.atomic import atomic_path
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)

    def save(self, name: str, epoch: int, full: bool = True) -> None:
        """{"model": state_dict} (official format) and "imgsz", the size it was trained at (Meta's
        loader reads only "model"); last.pt adds what resume needs."""
        from sam2cli.io.atomic import atomic_path
        ckpt: Dict[str, Any] = {"model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                                "imgsz": int(self.model.image_size)}
        if full:
            ckpt.update(optimizer=self.opt.state_dict(), epoch=epoch, best_fitness=self.best)
        (self.run_dir / "weights").mkdir(parents=True, exist_ok=True)
        with atomic_path(self.run_dir / "weights" / name) as tmp:
            torch.save(ckpt, tmp)


def run_train(opts: TrainOptions, console: Console) -> int:
    return Trainer(opts, console).fit()
