"""What a benchmark run is asked to do: its settings, and the mechanisms built from ``conf/attention``."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from pathlib import Path
from typing import Any, Optional

import torch
import yaml
from hydra.utils import get_class
from omegaconf import DictConfig
from torch import nn

from hierarchicalvlm.attention import registry

DEFAULT_CONF_DIR = registry.CONF_DIR
# The repository root when running from a checkout / editable install; otherwise the working directory.
REPO_ROOT = DEFAULT_CONF_DIR.parents[1]
DEFAULT_RESULTS_ROOT = REPO_ROOT / "docs" / "benchmarks"

DEVICE_DEFAULTS: dict[str, dict[str, Any]] = {
    "cpu": dict(lengths=(512, 1024, 2048, 4096, 8192), batch_tokens=16384, precision="fp32", warmup=1, repeats=5,
                isolation="process", cores=False),
    "cuda": dict(lengths=(1024, 2048, 4096, 8192, 16384, 32768, 65536), batch_tokens=131072, precision="bf16-mixed",
                 warmup=3, repeats=10, isolation="none", cores=True),
}
PRECISIONS = ("fp32", "bf16", "bf16-mixed")  # bf16 = bf16 weights+inputs; bf16-mixed = fp32 weights under autocast
ISOLATIONS = ("process", "subprocess", "none")


@dataclasses.dataclass
class BenchSettings:
    """Everything a run needs; plain data so it can be sent to worker processes."""

    device: str
    lengths: tuple[int, ...]
    dim: int
    heads: int
    batch_tokens: int
    precision: str
    warmup: int
    repeats: int
    mechanisms: tuple[str, ...]
    overrides: dict[str, dict[str, Any]]
    cores: bool
    baselines: bool
    isolation: str
    conf_dir: str
    mamba_ssm_src: Optional[str] = None
    fla_autotune_configs: int = 4
    skip: tuple[str, ...] = ()
    cell_timeout: float = 1800.0
    skip_slower_than_ms: Optional[float] = None
    threads: Optional[int] = None
    seed: int = 0
    compile_layers: bool = False


def available_mechanisms(conf_dir: str | Path = DEFAULT_CONF_DIR) -> list[str]:
    """The ``conf/attention`` choices, full attention first."""
    names = registry.mechanism_names(conf_dir)
    if not names:
        raise ValueError(f"no attention configs found in {conf_dir}; pass --conf-dir pointing at conf/attention")
    return sorted(names, key=lambda name: (name != "full", name))


def _check_mechanism_name(name: str, conf_dir: str | Path) -> None:
    known = available_mechanisms(conf_dir)
    if name not in known:
        raise ValueError(f"unknown mechanism {name!r}; choose from: {', '.join(known)} (or 'all')")


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"local_global.window_size=512"`` -> ``("local_global", "window_size", 512)`` (value parsed as YAML)."""
    target, sep, raw = text.partition("=")
    name, dot, key = target.partition(".")
    if not sep or not dot or not name or not key:
        raise ValueError(f"--set expects MECHANISM.KEY=VALUE (e.g. local_global.window_size=512), got {text!r}")
    return name.strip(), key.strip(), yaml.safe_load(raw)


def mechanism_config(name: str, overrides: dict[str, dict[str, Any]], conf_dir: str | Path) -> DictConfig:
    """The partial config of ``conf/attention/<name>.yaml`` with the ``--set`` overrides applied (validated)."""
    _check_mechanism_name(name, conf_dir)
    cfg = registry.mechanism_config(name, conf_dir)
    settable = set(cfg.keys()) - {"_target_", "_partial_"}
    settable |= set(inspect.signature(get_class(cfg._target_)).parameters) - {"self", "args", "kwargs"}
    for key, value in overrides.get(name, {}).items():
        if key in ("dim", "num_heads"):
            raise ValueError(f"--set {name}.{key} is not allowed: the benchmark sets it; use --dim / --heads")
        if key not in settable:
            choices = ", ".join(sorted(settable - {"dim", "num_heads"}))
            raise ValueError(f"--set {name}.{key}: {name} has no knob {key!r}; choose from: {choices}")
        cfg[key] = value
    return cfg


def build_mechanism(
    name: str, dim: int, heads: int, overrides: dict[str, dict[str, Any]], conf_dir: str | Path
) -> nn.Module:
    """The mechanism as the model builds it (:func:`~hierarchicalvlm.attention.registry.build_mechanism`), with the
    ``--set`` overrides."""
    mechanism_config(name, overrides, conf_dir)  # a knob the mechanism does not have fails here, by name
    return registry.build_mechanism(name, dim, heads, conf_dir, **overrides.get(name, {}))


def knob_summary(name: str, settings: BenchSettings) -> str:
    """``"window_size=64, num_global_tokens=4, ..."``: the effective knobs of one mechanism."""
    cfg = mechanism_config(name, settings.overrides, settings.conf_dir)
    return ", ".join(f"{k}={v}" for k, v in cfg.items() if k not in ("_target_", "_partial_"))


def input_dtype(precision: str) -> torch.dtype:
    """dtype of the tensors fed to a layer (bf16 only when weights are bf16 too)."""
    return torch.bfloat16 if precision == "bf16" else torch.float32


def core_dtype(precision: str) -> torch.dtype:
    """dtype of q/k/v fed to a core: what the layer's projections would hand it (bf16 under autocast)."""
    return torch.float32 if precision == "fp32" else torch.bfloat16


def precision_context(precision: str, device: str) -> contextlib.AbstractContextManager:
    """Autocast to bf16 for ``bf16-mixed``; nothing otherwise (fp32, or bf16 weights and inputs)."""
    if precision == "bf16-mixed":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def validate_settings(settings: BenchSettings, build: bool = True) -> None:
    """Fail before any run with a ValueError naming the argument and the fix."""
    if settings.device not in DEVICE_DEFAULTS:
        raise ValueError(f"--device must be one of {', '.join(DEVICE_DEFAULTS)}, got {settings.device!r}")
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: CUDA is not available in this torch build / machine; use --device cpu")
    if settings.precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {settings.precision!r}")
    if settings.isolation not in ISOLATIONS:
        raise ValueError(f"--isolation must be one of {', '.join(ISOLATIONS)}, got {settings.isolation!r}")
    if not settings.lengths or any(n <= 0 for n in settings.lengths):
        raise ValueError(f"--lengths must be positive integers, got {settings.lengths}")
    for name, value in (("dim", settings.dim), ("heads", settings.heads), ("batch-tokens", settings.batch_tokens),
                        ("repeats", settings.repeats)):
        if value <= 0:
            raise ValueError(f"--{name} must be positive, got {value}")
    if settings.warmup < 1:
        raise ValueError(
            f"--warmup must be >= 1 (the first call, which may compile, is never timed), got {settings.warmup}"
        )
    if settings.threads is not None and settings.threads <= 0:
        raise ValueError(f"--threads must be positive (or left out for torch's default), got {settings.threads}")
    if settings.dim % settings.heads:
        raise ValueError(f"--dim {settings.dim} must be divisible by --heads {settings.heads}")
    for name in settings.mechanisms:
        _check_mechanism_name(name, settings.conf_dir)
    for name in settings.overrides:
        _check_mechanism_name(name, settings.conf_dir)
    for name in available_mechanisms(settings.conf_dir):
        if build:  # at the real width: bad knob values fail here, not hours into the sweep
            build_mechanism(name, settings.dim, settings.heads, settings.overrides, settings.conf_dir)
        else:  # knob names only (building would raise this process's peak RSS before a --single measurement)
            mechanism_config(name, settings.overrides, settings.conf_dir)
