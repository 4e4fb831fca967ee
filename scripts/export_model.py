#!/usr/bin/env python
"""Export a trained checkpoint as a Hugging Face Hub-style folder: model.safetensors + config.json + tokenizer +
README.md (model card); load it back with ``hierarchicalvlm.publish.load_exported(folder)``. Nothing is uploaded.

    python scripts/export_model.py logs/train/runs/<run>/checkpoints/last.ckpt exported/my-model
    huggingface-cli upload <user>/<repo> exported/my-model        # to publish it, if you want to

The attention config is read from the checkpoint or, for older checkpoints, from the run's ``.hydra/config.yaml``
(``--config`` names another one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from hierarchicalvlm.publish import export_model


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a .ckpt written by train.py")
    parser.add_argument("out_dir", type=Path, help="folder to write (created)")
    parser.add_argument("--config", type=Path, help="the run's .hydra/config.yaml, if not beside the checkpoint")
    parser.add_argument("--card", type=Path, help="Markdown appended to the model card")
    args = parser.parse_args(argv)
    if not args.checkpoint.is_file():
        parser.error(f"checkpoint {args.checkpoint} does not exist")
    attention = None
    if args.config is not None:
        attention = OmegaConf.to_container(OmegaConf.load(args.config).attention, resolve=True)
    extra = args.card.read_text() if args.card else ""
    out = export_model(args.checkpoint, args.out_dir, attention=attention, extra_card=extra)
    print(f"exported {args.checkpoint} to {out}: " + ", ".join(sorted(p.name for p in out.iterdir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
