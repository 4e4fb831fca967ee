"""Can the MambaLayer learn selective copying on its own? A probe outside the video model.

A sequence of random class tokens (6 classes) with one marked position; the last token asks for the marked
token's class. Two pre-norm residual blocks (mixer + MLP) of width 64, AdamW without weight decay, batches of
32, accuracy on 256 fresh sequences every 100 steps. Compares the MambaLayer (bidirectional, PyTorch scan) with
its decay-rate initialisation ``a_min``/``a_max`` against full softmax attention. docs/EMBEDDED_TASK.md quotes it.

    python scripts/probes/mamba_selective_copy.py --mixer full
    python scripts/probes/mamba_selective_copy.py --mixer mamba                       # A in [1, 16]
    python scripts/probes/mamba_selective_copy.py --mixer mamba --a-min 0.01 --a-max 1
    python scripts/probes/mamba_selective_copy.py --mixer mamba --lr 3e-3
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from hierarchicalvlm.attention import MambaLayer

DIM, CLASSES = 64, 6


class Block(nn.Module):
    def __init__(self, mixer: str, a_min: float, a_max: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.is_mamba = mixer == "mamba"
        self.mix = (MambaLayer(DIM, num_heads=4, causal=False, kernel="torch", a_min=a_min, a_max=a_max)
                    if self.is_mamba else nn.MultiheadAttention(DIM, 4, batch_first=True))
        self.mlp = nn.Sequential(nn.Linear(DIM, 4 * DIM), nn.GELU(), nn.Linear(4 * DIM, DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + (self.mix(h) if self.is_mamba else self.mix(h, h, h, need_weights=False)[0])
        return x + self.mlp(self.norm2(x))


def batch(size: int, length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tokens (class ids; the last is the query id), marks (1 = the marked token, 2 = the query) and answers."""
    tokens = torch.randint(0, CLASSES, (size, length))
    marks = torch.zeros(size, length, dtype=torch.long)
    where = torch.randint(0, length - 1, (size,))
    marks[torch.arange(size), where] = 1
    marks[:, -1] = 2
    answers = tokens[torch.arange(size), where]
    tokens[:, -1] = CLASSES
    return tokens, marks, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mixer", choices=("mamba", "full"), default="mamba")
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--a-min", type=float, default=1.0)
    parser.add_argument("--a-max", type=float, default=16.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    token_embedding, mark_embedding = nn.Embedding(CLASSES + 1, DIM), nn.Embedding(3, DIM)
    position = nn.Parameter(torch.randn(args.length, DIM) * 0.02)
    blocks = nn.Sequential(*(Block(args.mixer, args.a_min, args.a_max) for _ in range(2)))
    head = nn.Linear(DIM, CLASSES)
    parts = nn.ModuleList([token_embedding, mark_embedding, blocks, head])
    optimizer = torch.optim.AdamW([*parts.parameters(), position], lr=args.lr, weight_decay=0.0)

    def logits(tokens: torch.Tensor, marks: torch.Tensor) -> torch.Tensor:
        return head(blocks(token_embedding(tokens) + mark_embedding(marks) + position)[:, -1])

    start = time.time()
    for step in range(args.steps):
        tokens, marks, answers = batch(32, args.length)
        loss = nn.functional.cross_entropy(logits(tokens, marks), answers)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == args.steps - 1:
            with torch.no_grad():
                tokens, marks, answers = batch(256, args.length)
                accuracy = (logits(tokens, marks).argmax(-1) == answers).float().mean().item()
            print(f"{args.mixer} step {step}: loss {loss.item():.3f}, accuracy {accuracy:.3f} "
                  f"(chance {1 / CLASSES:.3f}), {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
