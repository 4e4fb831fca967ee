"""Sample previews at validation: a few frames, the question, the model's answer and the right one, as images in
TensorBoard (``add_image``) and Weights & Biases (``log_image``), so a dashboard shows what the model sees and says.

Images are drawn with Pillow (no plotting stack, a few milliseconds per epoch). Data without pixels
(``data=features``) gets the text alone (TensorBoard ``add_text``, a W&B table).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from PIL import Image, ImageDraw, ImageFont

from hierarchicalvlm.data.base import IGNORE_INDEX

log = logging.getLogger(__name__)

RIGHT, WRONG, INK, PAPER = (0, 140, 0), (200, 0, 0), (20, 20, 20), (255, 255, 255)


def slice_batch(batch: dict[str, Any], count: int) -> dict[str, Any]:
    """The first ``count`` samples of a collated batch (tensors and lists cut along the batch axis)."""
    size = batch["frames"].shape[0]
    return {key: value[:count] if (torch.is_tensor(value) and value.ndim and value.shape[0] == size)
            or (isinstance(value, list) and len(value) == size) else value for key, value in batch.items()}


def pick_frames(frames: torch.Tensor, mask: torch.Tensor, count: int) -> list[np.ndarray]:
    """``count`` real frames spread evenly over the video, as ``(H, W, 3)`` uint8 arrays."""
    real = torch.nonzero(mask).flatten()
    if len(real) == 0:
        return []
    index = real[torch.linspace(0, len(real) - 1, min(count, len(real))).round().long()]
    chosen = frames[index].float().clamp(0, 1).mul(255).byte()
    return [f.permute(1, 2, 0).cpu().numpy() for f in chosen]


def render_preview(frames: list[np.ndarray], lines: list[tuple[str, tuple[int, int, int]]], frame_px: int = 64,
                   width: Optional[int] = None) -> np.ndarray:
    """One sample as an ``(H, W, 3)`` uint8 image: the frames side by side (enlarged to ``frame_px``), the text
    lines below them."""
    font = ImageFont.load_default()
    line_px = 14
    strip_w = max(1, len(frames)) * (frame_px + 2)
    text_w = max((int(font.getlength(text)) for text, _ in lines), default=0) + 8
    image = Image.new("RGB", (width or max(strip_w, text_w, 160), frame_px + 6 + line_px * len(lines) + 4), PAPER)
    for i, frame in enumerate(frames):
        tile = Image.fromarray(frame[..., :3] if frame.shape[-1] >= 3 else np.repeat(frame, 3, axis=-1))
        image.paste(tile.resize((frame_px, frame_px), Image.NEAREST), (i * (frame_px + 2), 2))
    draw = ImageDraw.Draw(image)
    for row, (text, colour) in enumerate(lines):
        draw.text((4, frame_px + 6 + row * line_px), text, fill=colour, font=font)
    return np.asarray(image)


class SamplePreviews(Callback):
    """Log ``num_samples`` samples of the first validation batch every ``every_n_epochs`` epochs.

    Every rank runs the (tiny) extra forward, since a sharded model (FSDP) can only run forward on all ranks at
    once; rank 0 draws and logs its samples.

    Each preview shows ``num_frames`` frames, the question, the predicted and the true answer (green when right,
    red when wrong) and the caption; tag ``val/previews`` in TensorBoard, key ``val/previews`` in W&B.
    """

    def __init__(self, num_samples: int = 4, num_frames: int = 6, every_n_epochs: int = 1, frame_px: int = 64) -> None:
        super().__init__()
        if num_samples < 1 or num_frames < 1 or every_n_epochs < 1 or frame_px < 8:
            raise ValueError("callbacks.previews: num_samples, num_frames and every_n_epochs must be >= 1, "
                             f"frame_px >= 8 (got {num_samples}, {num_frames}, {every_n_epochs}, {frame_px})")
        self.num_samples, self.num_frames = num_samples, num_frames
        self.every_n_epochs, self.frame_px = every_n_epochs, frame_px

    def _due(self, trainer: L.Trainer, batch_idx: int, dataloader_idx: int) -> bool:
        datamodule = getattr(trainer, "datamodule", None)
        return (batch_idx == 0 and dataloader_idx == 0 and not trainer.sanity_checking
                and trainer.current_epoch % self.every_n_epochs == 0
                and getattr(datamodule, "tokenizer", None) is not None
                and any(isinstance(lg, (TensorBoardLogger, WandbLogger)) for lg in trainer.loggers))

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                                batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        if not self._due(trainer, batch_idx, dataloader_idx):
            return
        samples = slice_batch(batch, self.num_samples)
        with torch.no_grad():
            predicted = pl_module(samples).qa_logits.argmax(-1).tolist()
        if not trainer.is_global_zero:
            return
        texts = self.describe(trainer, samples, predicted)
        pixels = samples["frames"].ndim == 5
        images = [render_preview(pick_frames(samples["frames"][i], samples["frame_mask"][i], self.num_frames)
                                 if pixels else [], lines, self.frame_px) for i, lines in enumerate(texts)]
        self.log_previews(trainer, images if pixels else None, texts)

    def describe(self, trainer: L.Trainer, samples: dict[str, Any], predicted: list[int]
                 ) -> list[list[tuple[str, tuple[int, int, int]]]]:
        """Text lines of each sample: video id, question, predicted vs true answer, caption."""
        datamodule = trainer.datamodule
        tokenizer, answers = datamodule.tokenizer, list(datamodule.answers)

        def text(ids: torch.Tensor, mask: torch.Tensor) -> str:
            return tokenizer.decode(ids[mask].tolist())

        described = []
        for i, guess in enumerate(predicted):
            truth = int(samples["answer"][i])
            said = answers[guess] if guess < len(answers) else f"#{guess}"
            lines = [(f"video {samples['video_id'][i]}", INK),
                     (f"Q: {text(samples['question_ids'][i], samples['question_mask'][i])}", INK)]
            if truth == IGNORE_INDEX:
                lines.append((f"predicted: {said} (no answer given)", INK))
            else:
                lines.append((f"predicted: {said}   answer: {answers[truth]}", RIGHT if guess == truth else WRONG))
            lines.append((f"caption: {text(samples['caption_ids'][i], samples['caption_mask'][i])}", INK))
            described.append(lines)
        return described

    def log_previews(self, trainer: L.Trainer, images: Optional[list[np.ndarray]],
                     texts: list[list[tuple[str, tuple[int, int, int]]]]) -> None:
        step = trainer.global_step
        captions = [" | ".join(line for line, _ in lines) for lines in texts]
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                if images:
                    width = max(img.shape[1] for img in images)
                    padded = [np.pad(img, ((0, 2), (0, width - img.shape[1]), (0, 0)), constant_values=255)
                              for img in images]
                    logger.experiment.add_image("val/previews", np.concatenate(padded), step, dataformats="HWC")
                logger.experiment.add_text("val/previews", "\n\n".join(captions), step)
            elif isinstance(logger, WandbLogger):
                if images:
                    logger.log_image("val/previews", images=list(images), caption=captions, step=step)
                else:
                    logger.log_text("val/previews", columns=["sample"], data=[[c] for c in captions], step=step)
