"""Text encoder choices (``conf/model/text/<name>.yaml``): how questions and captions become one vector each.

* ``kind: scratch``: a small transformer over the word vocabulary trained on the data
  (:class:`~hierarchicalvlm.models.text_encoder.TextEncoder`);
* ``kind: hf``: a pretrained text encoder from ``transformers`` (CLIP's text tower, BERT…) with its own tokenizer
  (``tokenizer``: the data modules then tokenize with it), frozen or fine-tuned (:class:`PretrainedTextEncoder`).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch import nn

from .backbones import Backbone

POOLINGS = ("pooler", "cls", "mean")


class PretrainedTextEncoder(nn.Module):
    """``(B, L)`` token ids + ``(B, L)`` mask -> ``(B, dim)`` through a pretrained text encoder.

    ``pooling``: ``pooler`` (the backbone's pooled output: CLIP's end-of-text token), ``cls`` (the first token,
    BERT's ``[CLS]``) or ``mean`` (mean of the real tokens); a linear layer maps the width to ``dim``.
    """

    def __init__(self, spec: Mapping[str, Any], dim: int, vocab_size: int, where: str = "model.text") -> None:
        super().__init__()
        self.pooling = str(spec.get("pooling", "pooler"))
        if self.pooling not in POOLINGS:
            raise ValueError(f"{where}.pooling={self.pooling!r}: use one of {', '.join(POOLINGS)}")
        self.backbone = Backbone(spec, where)
        backbone_vocab = int(getattr(self.backbone.config, "vocab_size", vocab_size))
        if vocab_size > backbone_vocab:
            raise ValueError(f"{where}: the tokenizer {spec.get('tokenizer')!r} has {vocab_size} tokens but the "
                             f"backbone's embedding table only {backbone_vocab}; give the matching tokenizer")
        self.proj = nn.Linear(int(self.backbone.config.hidden_size), dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, tokens: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The text's vector (B, dim); with ``tokens``, also every token's state mapped to dim (B, L, dim)."""
        out = self.backbone(input_ids=ids, attention_mask=mask.long())
        if self.pooling == "pooler":
            pooled = out.pooler_output
        elif self.pooling == "cls":
            pooled = out.last_hidden_state[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
            pooled = (out.last_hidden_state * weights).sum(1) / weights.sum(1).clamp(min=1)
        pooled = self.proj(pooled.to(self.proj.weight.dtype))
        if tokens:
            return pooled, self.proj(out.last_hidden_state.to(self.proj.weight.dtype))
        return pooled


def build_text_encoder(text: Optional[Mapping[str, Any]], vocab_size: int, dim: int) -> Optional[nn.Module]:
    """The encoder of a pretrained text choice, or None for the from-scratch encoder (``kind: scratch``)."""
    kind = (text or {}).get("kind", "scratch")
    if kind == "scratch":
        return None
    if kind != "hf":
        raise ValueError(f"model.text.kind={kind!r} is unknown; use scratch or hf (conf/model/text/*.yaml)")
    return PretrainedTextEncoder(text, dim, vocab_size)
