"""LightningModule: objectives, metrics, optimiser and schedule around :class:`HierarchicalVLM`."""

from __future__ import annotations

import logging
import math
from typing import Any, Optional

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.strategies import FSDPStrategy
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from hierarchicalvlm.attention.linear.performer import step_feature_redraws
from hierarchicalvlm.data.base import IGNORE_INDEX

from .backbones import Backbone
from .breakdown import AccuracyBreakdown
from .config import NetConfig
from .hierarchical_vlm import HierarchicalVLM, contrastive_loss, qa_loss
from .metrics import CrossModalRecall
from .video_encoder import AttentionFactory

log = logging.getLogger(__name__)


def with_padding_flag(batch: dict[str, Any]) -> dict[str, Any]:
    """``batch`` plus ``padded``: whether any frame is padding, decided here, outside a compiled network (a
    compiled graph cannot read a tensor on the host), so the network runs its mixers unmasked when it can."""
    if "padded" in batch:
        return batch
    return {**batch, "padded": not bool(batch["frame_mask"].all())}


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to ``min_ratio``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class HierarchicalVLMModule(L.LightningModule):
    """Trains the video-language model on QA + video-text contrastive objectives.

    Args:
        net: the network's shape as a plain dict (``model.net``; kept a dict in the checkpoint's hparams), built
            into a :class:`NetConfig` (an unknown key is an error naming ``model.net.<key>``).
        inputs: the data module's ``model_inputs()``.
        attention: the level-2 attention: its config as a plain dict (``conf/attention/<name>.yaml``, kept in the
            checkpoint's hparams so ``load_from_checkpoint(path)`` rebuilds it), or a factory (not saved).
        optimizer: AdamW settings (lr, weight_decay, betas).
        scheduler: warm-up steps and the final learning-rate ratio of the cosine decay.
        loss: weights of the QA and contrastive objectives.
        compile: wrap the network in ``torch.compile``.
        depth_buckets: validation/test accuracy is also logged per bucket of evidence depth
            (``<stage>/qa_acc/depth_<k>``, and per family ``<stage>/qa_acc/<family>/depth_<k>``) where the data
            gives each sample a depth (the embedded task does).
        visual, text: the encoder choices (``conf/model/visual``, ``conf/model/text``); None: from scratch.
    """

    def __init__(
        self,
        net: dict[str, Any],
        inputs: dict[str, Any],
        attention: AttentionFactory | dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any],
        loss: dict[str, float],
        compile: bool = False,
        depth_buckets: int = 10,
        visual: Optional[dict[str, Any]] = None,
        text: Optional[dict[str, Any]] = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["attention"] if callable(attention) else None)
        if not callable(attention):
            attention = instantiate(attention)
        self.net = HierarchicalVLM(inputs, attention, NetConfig.from_dict(net), visual=visual, text=text)
        self.compile_net = compile
        num_answers = inputs["num_answers"]
        self.task_names: list[str] = list(inputs.get("tasks") or [])
        for stage in ("val", "test"):
            setattr(self, f"{stage}_acc", MulticlassAccuracy(num_answers, average="micro", ignore_index=IGNORE_INDEX))
            setattr(self, f"{stage}_recall", CrossModalRecall())
            # QA accuracy per task family and per depth bucket (logged as <stage>/qa_acc/<family>, .../depth_<k>)
            setattr(self, f"{stage}_breakdown", AccuracyBreakdown(self.task_names, depth_buckets, IGNORE_INDEX))
        self.skipped_samples = 0

    @property
    def net_is_compiled(self) -> bool:
        return isinstance(self.net, torch._dynamo.eval_frame.OptimizedModule)

    def configure_model(self) -> None:
        if self.compile_net and not self.net_is_compiled:
            self.net = torch.compile(self.net, dynamic=False)

    def long_range_tokens(self, batch: dict[str, Any]) -> int:
        """Tokens through the long-range level in this batch (padding included: it is computed on)."""
        frames = batch["frames"]
        return int(frames.shape[0] * frames.shape[1] * self.net.tokens_per_frame)

    def forward(self, batch: dict[str, Any]):
        return self.net(with_padding_flag(batch))

    def _global_batch(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Embeddings of every rank's batch, so that InfoNCE under data parallelism has the negatives (and the
        loss) of one device at the same global batch. Gradients flow back to each rank's own rows."""
        if self._trainer is None or self.trainer.world_size == 1 or not self.training:
            return embeddings
        return self.all_gather(embeddings, sync_grads=True).flatten(0, 1)

    def _losses(self, batch: dict[str, Any]):
        out = self(batch)
        qa = qa_loss(out.qa_logits, batch["answer"])
        video, text = self._global_batch(out.video_embedding), self._global_batch(out.text_embedding)
        contrastive = contrastive_loss(video, text, out.logit_scale)
        weights = self.hparams.loss
        total = weights["qa_weight"] * qa + weights["contrastive_weight"] * contrastive
        return out, total, qa, contrastive

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if self.net_is_compiled:
            step_feature_redraws(self.net)  # compiled graphs leave the Performer redraw schedule to us
        out, total, qa, contrastive = self._losses(batch)
        bs = batch["frames"].shape[0]
        # Averaged over ranks (one all-reduce of 3 scalars), so under DDP the logged loss is the global batch's,
        # comparable with one GPU at the same global batch.
        self.log_dict(
            {"train/loss": total, "train/qa_loss": qa, "train/contrastive_loss": contrastive},
            prog_bar=False, batch_size=bs, sync_dist=True,
        )
        self.log("train/loss_step", total, prog_bar=True, batch_size=bs, logger=False)
        if batch.get("num_skipped"):
            self.skipped_samples += int(batch["num_skipped"])
            self.log("data/skipped_samples", float(self.skipped_samples), batch_size=bs)
        return total

    def _eval_step(self, stage: str, batch: dict[str, Any]) -> None:
        out, total, qa, contrastive = self._losses(batch)
        acc: MulticlassAccuracy = getattr(self, f"{stage}_acc")
        acc.update(out.qa_logits, batch["answer"])
        getattr(self, f"{stage}_recall").update(out.video_embedding, out.text_embedding)
        bs = batch["frames"].shape[0]
        self.log(f"{stage}/loss", total, batch_size=bs, sync_dist=True)
        if batch.get("num_skipped"):  # reads of this split skipped in this epoch (data.on_bad_sample=skip)
            self.log(f"data/skipped_samples/{stage}", float(batch["num_skipped"]), batch_size=bs,
                     on_step=False, on_epoch=True, reduce_fx="sum")
        self.log(f"{stage}/qa_acc", acc, batch_size=bs, prog_bar=True)
        getattr(self, f"{stage}_breakdown").update(out.qa_logits, batch["answer"], batch.get("task"), batch.get("depth"))

    def _eval_epoch_end(self, stage: str) -> None:
        recall = getattr(self, f"{stage}_recall")
        self.log_dict({f"{stage}/{k}": v for k, v in recall.compute().items()})
        recall.reset()
        # Only cells that saw a sample are logged (a family absent from the split has no accuracy, not 0);
        # the counts are synced before the keys are chosen, so every rank logs the same keys.
        breakdown = getattr(self, f"{stage}_breakdown")
        results = breakdown.compute()
        self.log(f"{stage}/num_samples", results.pop("num_samples").float())
        self.log_dict({f"{stage}/qa_acc/{name}": value for name, value in results.items()})
        breakdown.reset()
        chance = self._chance_accuracy()
        if chance is not None:
            self.log(f"{stage}/chance_acc", chance)

    def _chance_accuracy(self) -> Optional[float]:
        """The data's chance accuracy (best guess from the question alone), where the data module states it."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        chance = getattr(datamodule, "chance_accuracy", None)
        return float(chance()["overall"]) if callable(chance) else None

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("test", batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def configure_gradient_clipping(
        self, optimizer: torch.optim.Optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ) -> None:
        """Clip as configured; under FSDP by the norm over every shard (Lightning's FSDP precision plugin refuses
        norm clipping, so ``trainer=fsdp`` would fail at the first step)."""
        if gradient_clip_val and isinstance(self.trainer.strategy, FSDPStrategy):
            if gradient_clip_algorithm not in (None, "norm"):
                raise ValueError(f"trainer.gradient_clip_algorithm={gradient_clip_algorithm!r}: FSDP runs clip by norm only")
            self.trainer.strategy.model.clip_grad_norm_(gradient_clip_val)
            return
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self):
        opt_cfg = self.hparams.optimizer
        # fine-tuned pretrained backbones learn at lr_scale x lr (model.visual/text.lr_scale)
        lr_scale = {id(p): m.lr_scale for m in self.net.modules() if isinstance(m, Backbone) for p in m.parameters()}
        groups: dict[tuple[bool, float], list[nn.Parameter]] = {}
        for name, param in self.net.named_parameters():
            if not param.requires_grad:
                continue
            decays = not (param.ndim < 2 or "pos" in name or "summary" in name)
            groups.setdefault((decays, lr_scale.get(id(param), 1.0)), []).append(param)
        optimizer = torch.optim.AdamW(
            [{"params": params, "weight_decay": opt_cfg["weight_decay"] if decays else 0.0, "lr": opt_cfg["lr"] * scale}
             for (decays, scale), params in sorted(groups.items(), key=lambda item: (not item[0][0], -item[0][1]))],
            lr=opt_cfg["lr"],
            betas=tuple(opt_cfg.get("betas", (0.9, 0.999))),
        )
        sched_cfg = self.hparams.scheduler
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(sched_cfg["warmup_steps"])
        if warmup >= total:
            log.warning("model.scheduler.warmup_steps=%d is not shorter than the %d training steps: the learning "
                        "rate never reaches model.optimizer.lr; lower warmup_steps or train longer", warmup, total)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup, total, float(sched_cfg.get("min_lr_ratio", 0.05)))
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
