"""Any Interplay objective in a PyTorch Lightning ``Trainer``, with the user's own loggers and callbacks.

    import pytorch_lightning as pl
    from interplay.config import RunConfig
    from interplay.lightning import InterplayModule

    module = InterplayModule.from_config(RunConfig.from_dict({"data": {"name": "pid-xor"},
                                                              "method": {"name": "synib"}}))
    pl.Trainer(max_epochs=30).fit(module)          # the module brings its data (train/val/test loaders)

or, with a model, objective and data of your own::

    objective.setup(model, splits)                 # or pass data=splits and InterplayModule calls it
    module = InterplayModule(model, objective, splits, lr=3e-4, batch_size=64)

What it does, as Interplay's engine does (``engine/trainer.py``):

- ``training_step`` calls ``objective(model, batch, state)`` with a :class:`~interplay.objectives.TrainState` kept in
  step with Lightning (``epoch`` = ``current_epoch`` plus the epochs of earlier stages, ``step`` = optimiser steps,
  ``batch_index`` / ``num_batches``); the objective's own ``backward`` (if it has one) receives Lightning's loss
  scaling (``accumulate_grad_batches`` division, AMP scaler); ``objective.on_after_backward`` (e.g. OGM-GE's
  gradient modulation) runs in ``on_before_optimizer_step``: after AMP unscaling, before Lightning's gradient
  clipping and the optimiser step, once per (accumulated) step, the engine's order; ``on_train_epoch_start`` gets
  the training split.
- Logged per epoch (``self.log``, so any Lightning logger receives them): ``train/loss``, every loss term
  ``train/<part>``, ``train/accuracy``, the objective's epoch statistics ``objective/<name>``, and
  ``val/accuracy``, ``val/loss``, ``val/accuracy_by_interaction/<kind>`` (where the data knows each sample's
  interaction; ``test/...`` the same in ``trainer.test``). ``train/loss_step`` per step, in the progress bar.
  ``module.history`` keeps one dict per epoch in log.jsonl's layout (``epoch``, ``train``, ``val``,
  ``objective``). Sums are reduced across ranks under DDP before they are divided.
- With ``data``, the loaders are the engine's: the same shuffling order for a seed and epoch (and under DDP each
  rank takes its slice of every global batch), so a fit reproduces ``interplay train``'s per-epoch losses.

Stages. Methods with one stage (joint, synib, ogm_ge, the baselines, ...) train as they are. A method with
several (OMIB: warmup, main; DMIL: id, gate or cd, finetune) trains one stage per fit: ``stage="warmup"`` then
``stage="main"``, each with ``Trainer(max_epochs=<that stage's epochs>)`` and the run's total ``epochs``: the stage
sets which parameters train, its learning-rate scale and ``state.stage``; starting a stage from the previous
stage's best checkpoint (``Stage.reload_best``) is the user's (e.g. ``ModelCheckpoint`` and ``load_state_dict``).
Without ``stage`` such a method is refused in one line. Methods with several optimiser steps per batch
(``objective.phases``) are refused too (``interplay train`` runs them). Interplay's own train options (schedules,
early stopping, accumulation, clipping, precision) are Lightning's here: use its Trainer arguments and callbacks.

Needs the optional dependency ``pytorch-lightning`` (``pip install 'interplay[lightning]'``); importing this module
without it raises one ``ImportError`` line naming the extra. Nothing else in Interplay imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from .config import RunConfig, TrainConfig
from .data import Batch, DataSplits, MultimodalDataset
from .engine.seeding import epoch_generator, seed_everything
from .engine.trainer import OPTIMIZERS, build_data, resolve_config
from .errors import ConfigError
from .models import MultimodalModel, build_model
from .objectives import Objective, Stage, TrainState, build_objective, is_correct

MISSING = "interplay.lightning needs the optional dependency pytorch-lightning (pip install 'interplay[lightning]')"

try:
    import pytorch_lightning as pl
except ImportError:
    raise ImportError(MISSING) from None


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochBatches:
    """The engine's mini-batches of one split, as an iterable a Lightning ``Trainer`` accepts as a loader.

    Each pass (one epoch) yields :class:`~interplay.data.Batch` objects of ``batch_size`` samples (the last may be
    smaller); with ``shuffle``, in the order ``epoch_generator(seed, epoch())`` draws, the engine's order for that
    epoch. Under DDP each rank takes its slice of every global batch (``idx.tensor_split(world)[rank]``), as the
    engine does, so the global batch is ``batch_size`` whatever the number of ranks.
    """

    def __init__(self, split: MultimodalDataset, batch_size: int, shuffle: bool = False, seed: int = 0,
                 epoch: Callable[[], int] = lambda: 0) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size: expected a positive integer, got {batch_size}")
        self.split, self.batch_size, self.shuffle, self.seed, self.epoch = split, batch_size, shuffle, seed, epoch

    def __len__(self) -> int:
        return self.split.num_batches(self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        gen = epoch_generator(self.seed, self.epoch()) if self.shuffle else None
        rank, world = _rank_and_world()
        for idx in self.split.index_batches(self.batch_size, shuffle=self.shuffle, generator=gen):
            yield self.split.batch(idx.tensor_split(world)[rank] if world > 1 else idx)


class InterplayModule(pl.LightningModule):
    """A ``LightningModule`` that trains ``objective`` on ``model`` (see the module docstring).

    Args:
        model: the multimodal model.
        objective: any registered objective (``build_objective``) or your own :class:`~interplay.objectives.Objective`.
        data: the splits; the module then provides the train/val/test loaders and calls ``objective.setup`` if it
            has not been called. Without it, pass your own loaders of :class:`~interplay.data.Batch` (e.g.
            :class:`EpochBatches`) to ``Trainer.fit`` and call ``objective.setup(model, splits)`` first.
        lr, optimizer, weight_decay, momentum: the optimiser, as ``train.*`` (adam | adamw | sgd).
        batch_size, seed: of the training loader (shuffled by ``epoch_generator(seed, epoch)``); evaluation
            batches are ``max(batch_size, 256)`` samples, as in the engine.
        epochs: the run's total epochs, for methods whose stages depend on it (default: the Trainer's
            ``max_epochs``).
        stage: the one stage of a multi-stage method this fit trains (see the module docstring).
    """

    def __init__(self, model: MultimodalModel, objective: Objective, data: DataSplits | None = None, *,
                 lr: float = 3e-4, optimizer: str = "adam", weight_decay: float = 0.0, momentum: float = 0.9,
                 batch_size: int = 64, seed: int = 0, epochs: int | None = None, stage: str | None = None) -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer: unknown optimizer {optimizer!r}; expected one of {', '.join(OPTIMIZERS)}")
        if not lr > 0:
            raise ConfigError(f"lr: expected a finite positive number, got {lr}")
        if epochs is not None and epochs < 1:
            raise ConfigError(f"epochs: expected a positive integer, got {epochs}")
        self.model = model
        self.objective = objective
        self.data = data
        if objective.info is None:
            if data is None:
                raise ConfigError(f"InterplayModule: method {objective.registry_name or type(objective).__name__!r} "
                                  f"is not set up; pass data=splits or call objective.setup(model, splits) first")
            objective.setup(model, data)
        self.train_options = TrainConfig(lr=lr, optimizer=optimizer, weight_decay=weight_decay, momentum=momentum,
                                         batch_size=batch_size, seed=seed)
        self.epochs = epochs
        self.stage_name = stage
        self.history: list[dict[str, Any]] = []
        self._stage: Stage | None = None
        self._stage_first = 0  # epochs of the stages before this one
        self._total = epochs or 1
        self._frozen: list[torch.nn.Module] = []
        self._state = TrainState()
        self._out: Any = None
        self._sums: dict[str, Tensor] = {}
        self._eval: dict[str, dict[str, Tensor]] = {}
        self._val: dict[str, Any] = {}

    @classmethod
    def from_config(cls, cfg: RunConfig, stage: str | None = None) -> InterplayModule:
        """Data, model and objective built from a run config exactly as ``interplay train`` builds them (same seed,
        same order of random draws), with the config's optimiser, batch size, seed and epochs."""
        cfg = resolve_config(cfg)
        t = cfg.train
        seed_everything(t.seed)
        data = build_data(cfg)
        model = build_model(cfg.model, data.info)
        objective = build_objective(cfg.method)
        objective.setup(model, data)
        return cls(model, objective, data, lr=t.lr, optimizer=t.optimizer, weight_decay=t.weight_decay,
                   momentum=t.momentum, batch_size=t.batch_size, seed=t.seed, epochs=t.epochs, stage=stage)

    # ------------------------------------------------------------------ stages and optimiser
    def _method(self) -> str:
        return self.objective.registry_name or type(self.objective).__name__

    def _resolve_stage(self) -> Stage:
        """The stage this fit trains (checked against the Trainer's ``max_epochs``)."""
        max_epochs = self.trainer.max_epochs if self._trainer is not None else None
        max_epochs = max_epochs if max_epochs is not None and max_epochs > 0 else None
        self._total = self.epochs or max_epochs or 1
        stages = self.objective.stages(self._total)
        names = [s.name for s in stages]
        if self.stage_name is None:
            if len(stages) > 1:
                plan = ", ".join(f"{s.name} ({s.epochs} epochs)" for s in stages)
                raise ConfigError(f"InterplayModule: method {self._method()!r} trains in stages ({plan} of "
                                  f"{self._total}); fit one stage at a time with stage=NAME and "
                                  f"Trainer(max_epochs=<its epochs>) (see docs/lightning.md), or use interplay train")
            return stages[0]
        if self.stage_name not in names:
            raise ConfigError(f"InterplayModule: stage {self.stage_name!r} is not a stage of method {self._method()!r} "
                              f"with {self._total} epochs; expected one of {', '.join(names)}")
        index = names.index(self.stage_name)
        stage = stages[index]
        self._stage_first = sum(s.epochs for s in stages[:index])
        if len(stages) > 1 and max_epochs is not None and max_epochs != stage.epochs:
            raise ConfigError(f"InterplayModule: stage {stage.name!r} of method {self._method()!r} has {stage.epochs} "
                              f"epochs of {self._total}; use Trainer(max_epochs={stage.epochs})")
        return stage

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The stage's trainable parameters (``model.`` / ``objective.`` prefixed names, as in the engine) in a
        fresh optimiser at ``lr * stage.lr_scale``; frozen modules are kept in eval mode while training."""
        stage = self._stage = self._resolve_stage()
        params = []
        named = ([(f"model.{n}", p) for n, p in self.model.named_parameters()]
                 + [(f"objective.{n}", p) for n, p in self.objective.named_parameters()])
        for name, p in named:
            p.requires_grad_(stage.trainable is None or stage.trainable(name))
            if p.requires_grad:
                params.append(p)
        if not params:
            raise ConfigError(f"InterplayModule: stage {stage.name!r} of method {self._method()!r} has no trainable "
                              f"parameters")
        self._frozen = [m for m in (*self.model.modules(), *self.objective.modules())
                        if any(True for _ in m.parameters()) and not any(p.requires_grad for p in m.parameters())]
        t = self.train_options
        return OPTIMIZERS[t.optimizer](params, t, t.lr * stage.lr_scale)

    # ------------------------------------------------------------------ loaders
    def _loader(self, split: str, train: bool = False) -> EpochBatches:
        if self.data is None:
            raise ConfigError(f"InterplayModule: no data; pass data=splits or give Trainer.fit a {split} loader")
        t = self.train_options
        return EpochBatches(getattr(self.data, split), t.batch_size if train else max(t.batch_size, 256),
                            shuffle=train, seed=t.seed, epoch=lambda: self._stage_first + self.current_epoch)

    def train_dataloader(self) -> Any:
        return self._loader("train", train=True)

    def val_dataloader(self) -> Any:
        return self._loader("val")

    def test_dataloader(self) -> Any:
        return self._loader("test")

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        if isinstance(batch, Batch):
            return batch.to(device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def forward(self, batch: Batch) -> Tensor:
        """``(B, C)`` evaluation logits of the objective (``objective.predict``)."""
        return self.objective.predict(self.model, batch).logits

    # ------------------------------------------------------------------ training
    def _reduce(self, t: Tensor) -> Tensor:
        """``t`` summed across ranks (itself on one process)."""
        if self.trainer.world_size > 1:
            reduced: Tensor = self.trainer.strategy.reduce(t, reduce_op="sum")
            return reduced
        return t

    def on_train_epoch_start(self) -> None:
        assert self._stage is not None
        self.model.train()
        self.objective.train()
        for m in self._frozen:  # frozen modules (and their BatchNorm statistics) stay in eval mode
            m.eval()
        epoch = self._stage_first + self.current_epoch
        batches = self.trainer.num_training_batches
        self._state = TrainState(epoch=epoch, stage=self._stage.name, stage_epoch=self.current_epoch,
                                 stage_epochs=self._stage.epochs, step=self.global_step, num_epochs=self._total,
                                 num_batches=int(batches) if 0 < batches < float("inf") else 1)
        self.objective.reduce_epoch_sums = self._reduce if self.trainer.world_size > 1 else None
        self._sums = {}
        if type(self.objective).on_train_epoch_start is not Objective.on_train_epoch_start:
            if self.data is None:
                raise ConfigError(f"InterplayModule: method {self._method()!r} computes epoch statistics from the "
                                  f"training split (on_train_epoch_start); pass data=splits")
            train = self.data.train
            if train.target.device != self.device:
                train = train.to(self.device)
            self.objective.on_train_epoch_start(self.model, train, self._state)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        state = self._state
        state.batch_index, state.step, state.phase = batch_idx, self.global_step, ""
        phases = self.objective.phases(state)
        if len(phases) > 1:
            raise ConfigError(f"InterplayModule: method {self._method()!r} takes {len(phases)} optimiser steps per "
                              f"batch ({', '.join(phases)}); InterplayModule takes one: train it with interplay train")
        out = self.objective(self.model, batch, state)
        self._out = out
        b = float(len(batch))
        task = self.objective.info.task if self.objective.info is not None else "classification"
        add = {"n": torch.tensor(b, dtype=torch.float64, device=out.loss.device),
               "loss": out.loss.detach().double() * b,
               "accuracy": is_correct(out.logits.detach().float(), batch.target, task).sum().double(),
               **{f"part/{k}": v.detach().double() * b for k, v in out.parts.items()}}
        for k, v in add.items():
            self._sums[k] = self._sums[k] + v if k in self._sums else v
        self.log("train/loss_step", out.loss.detach(), on_step=True, on_epoch=False, prog_bar=True,
                 batch_size=len(batch))
        loss: Tensor = out.loss
        return loss

    def backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None:
        """Lightning's backward; an objective with its own ``backward`` gets Lightning's loss scaling as ``scale``."""
        if type(self.objective).backward is Objective.backward or self._out is None:
            super().backward(loss, *args, **kwargs)
            return
        accumulate = max(int(self.trainer.accumulate_grad_batches), 1)
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)

        def scale(value: Tensor) -> Tensor:
            value = value / accumulate if accumulate > 1 else value
            scaled: Tensor = scaler.scale(value) if scaler is not None else value
            return scaled

        self.objective.backward(self.model, self._out, self._state, scale)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """``objective.on_after_backward``: gradients complete (and unscaled), before clipping and the step."""
        self._state.step = self.global_step
        self.objective.on_after_backward(self.model, self._state)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._out = None  # the graph is not kept beyond its step

    def on_train_epoch_end(self) -> None:
        if not self._sums:
            return
        keys = sorted(self._sums)
        values = dict(zip(keys, self._reduce(torch.stack([self._sums[k] for k in keys])).tolist()))
        n = max(values.pop("n"), 1.0)
        parts = {k.removeprefix("part/"): v / n for k, v in values.items() if k.startswith("part/")}
        train = {"loss": values["loss"] / n, **parts, "accuracy": values["accuracy"] / n}
        objective = self.objective.pop_epoch_logs()
        self.log_dict({**{f"train/{k}": v for k, v in train.items()},
                       **{f"objective/{k}": v for k, v in objective.items()}}, on_step=False, on_epoch=True)
        self.history.append({"epoch": self._state.epoch + 1, "stage": self._state.stage,
                             "lr": self.trainer.optimizers[0].param_groups[0]["lr"], "train": train,
                             "objective": objective, "val": self._val})
        self._val = {}

    # ------------------------------------------------------------------ evaluation
    def _eval_step(self, split: str, batch: Batch) -> None:
        logits = self(batch).float()
        info = self.objective.info
        task = info.task if info is not None else "classification"
        correct = is_correct(logits, batch.target, task)
        dev = logits.device
        add = {"n": torch.tensor(float(len(batch)), dtype=torch.float64, device=dev),
               "correct": correct.sum().double(),
               "loss": self.objective.task_loss(logits, batch.target, reduction="sum").detach().double()}
        if info is not None and info.interactions is not None and "interaction" in batch.meta:
            k = len(info.interactions)
            codes = batch.meta["interaction"].long()
            add["group_n"] = torch.bincount(codes, minlength=k).double()
            add["group_correct"] = torch.bincount(codes, weights=correct.double(), minlength=k)
        sums = self._eval.setdefault(split, {})
        for key, v in add.items():
            sums[key] = sums[key] + v if key in sums else v

    def _eval_epoch_end(self, split: str) -> dict[str, Any]:
        sums = self._eval.pop(split, {})
        if not sums:
            return {}
        keys = sorted(sums)
        flat = self._reduce(torch.cat([sums[k].reshape(-1) for k in keys]))
        values, at = {}, 0
        for k in keys:
            size = sums[k].numel()
            values[k] = flat[at:at + size]
            at += size
        n = max(float(values["n"]), 1.0)
        metrics: dict[str, Any] = {"accuracy": float(values["correct"]) / n, "loss": float(values["loss"]) / n}
        logged = {f"{split}/{k}": v for k, v in metrics.items()}
        info = self.objective.info
        if "group_n" in values and info is not None and info.interactions is not None:
            by: dict[str, float | None] = {}
            for name, count, right in zip(info.interactions, values["group_n"].tolist(),
                                          values["group_correct"].tolist()):
                by[name] = right / count if count else None
                if count:
                    logged[f"{split}/accuracy_by_interaction/{name}"] = right / count
            metrics["accuracy_by_interaction"] = by
        self.log_dict(logged, on_step=False, on_epoch=True)
        return metrics

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def on_validation_epoch_end(self) -> None:
        metrics = self._eval_epoch_end("val")
        if not self.trainer.sanity_checking:
            self._val = metrics

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step("test", batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        return self(batch)


__all__ = ["EpochBatches", "InterplayModule", "MISSING"]
