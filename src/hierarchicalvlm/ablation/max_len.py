"""The longest video each attention mechanism can train on: doubling, then bisection over ``data.num_frames``.

A *trial* trains one optimisation step (forward, backward, optimizer) at a given number of frames,
through the normal pipeline, and reports whether it fit:

* on a GPU, it fails on ``torch.cuda.OutOfMemoryError`` (or when the peak allocated memory exceeds an
  optional cap, to emulate a smaller card);
* on CPU, it fails when the process's peak resident set (host RAM) exceeds a configurable cap, so the
  search is testable without a GPU and never exhausts the machine.

A config that is invalid at a length (e.g. a window wider than a short video) is skipped while doubling
has not found a fitting length yet, and counts as a failure afterwards.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from hierarchicalvlm.callbacks.memory import free_memory, peak_memory, reset_all_peaks
from hierarchicalvlm.run.config_checks import ConfigError, tokens_per_frame
from hierarchicalvlm.run.result import partial_result
from hierarchicalvlm.run.summary import device_name, now_iso, write_json_atomic

log = logging.getLogger(__name__)

Outcome = Literal["fits", "out_of_memory", "over_cap", "invalid", "error"]
GIB = 1024**3


@dataclass(frozen=True)
class Trial:
    """One attempt at ``num_frames``: its outcome, peak memory (bytes, kind) and the reason of a failure."""

    num_frames: int
    outcome: Outcome
    peak_bytes: Optional[int] = None
    peak_kind: Optional[str] = None
    seconds: float = 0.0
    reason: Optional[str] = None

    @property
    def fits(self) -> bool:
        return self.outcome == "fits"


@dataclass
class SearchResult:
    """The answer for one mechanism: the longest fitting frame count and the first failing one."""

    attention: str
    max_frames: Optional[int]
    first_failure_frames: Optional[int]
    bounded: bool  # False: the search limit fit, the true maximum may be larger
    reason: Optional[str]
    tokens_per_frame: Optional[int] = None
    trials: list[Trial] = field(default_factory=list)
    unfinished: bool = False  # the search was still running (a progress save): more trials were to come

    @property
    def max_seq_len(self) -> Optional[int]:
        if self.max_frames is None or self.tokens_per_frame is None:
            return None
        return self.max_frames * self.tokens_per_frame

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["max_seq_len"] = self.max_seq_len
        return data


def _check_search_args(start: int, limit: int, tolerance: float, multiple_of: int) -> None:
    if not isinstance(start, int) or start < 1:
        raise ValueError(f"start_frames must be an integer >= 1, got {start!r}")
    if not isinstance(limit, int) or limit < start:
        raise ValueError(f"max_frames must be an integer >= start_frames ({start}), got {limit!r}")
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance!r}; e.g. 0.05 stops within 5%")
    if not isinstance(multiple_of, int) or multiple_of < 1 or start % multiple_of:
        raise ValueError(f"multiple_of must be an integer >= 1 dividing start_frames ({start}), got {multiple_of!r}")


def search_max_frames(
    attention: str,
    trial: Callable[[int], Trial],
    start_frames: int = 8,
    max_frames: int = 65536,
    tolerance: float = 0.05,
    multiple_of: int = 1,
    on_trial: Optional[Callable[[SearchResult], None]] = None,
) -> SearchResult:
    """Double ``num_frames`` from ``start_frames`` until a trial fails (or ``max_frames`` fits), then bisect
    between the last fit and the first failure until they are within ``tolerance`` (relative) or
    ``multiple_of`` frames apart. Assumes that memory grows with length.

    ``on_trial``: called after every trial with the answer so far (``unfinished``), e.g. to save it, so that a
    search stopped by a time limit keeps what it found."""
    _check_search_args(start_frames, max_frames, tolerance, multiple_of)
    trials: list[Trial] = []

    fit, failure, reason = None, None, None

    def answer(unfinished: bool) -> SearchResult:
        return SearchResult(attention, fit, failure, bounded=failure is not None, reason=reason,
                            trials=list(trials), unfinished=unfinished)

    def attempt(frames: int) -> Trial:
        result = trial(frames)
        trials.append(result)
        log.info("%s: %d frames -> %s%s", attention, frames, result.outcome, f" ({result.reason})" if result.reason else "")
        return result

    def report_progress() -> None:
        if on_trial is not None:
            on_trial(answer(unfinished=True))

    frames = start_frames
    while True:
        result = attempt(frames)
        if result.fits:
            fit = frames
        elif result.outcome == "invalid" and fit is None:
            reason = result.reason  # too short for this mechanism: keep doubling
        else:
            failure, reason = frames, result.reason
        report_progress()
        if failure is not None or frames >= max_frames:
            break
        frames = min(2 * frames, max_frames)

    if fit is not None and failure is not None:
        while True:
            gap = failure - fit
            middle = (fit + failure) // 2 // multiple_of * multiple_of
            if gap <= max(multiple_of, int(fit * tolerance)) or middle <= fit:
                break
            result = attempt(middle)
            if result.fits:
                fit = middle
            else:
                failure, reason = middle, result.reason
            report_progress()
    return answer(unfinished=False)


# --- one training step through the pipeline ------------------------------------------------------
def compose_train_config(conf_dir: Path, overrides: list[str], root_dir: Path) -> DictConfig:
    """``conf/train.yaml`` composed with ``overrides`` outside a Hydra app (paths anchored at ``root_dir``)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import hierarchicalvlm.run.resolvers  # noqa: F401  (the ${hvlm.*} resolvers)

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(Path(conf_dir).resolve())):
        cfg = compose(config_name="train", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.root_dir = str(Path(root_dir).resolve())
    return cfg


def one_step_config(cfg: DictConfig, num_frames: int, output_dir: Path) -> DictConfig:
    """``cfg`` reduced to a single training step at ``num_frames``: no validation, test, loggers, callbacks
    or checkpoints, and (for the synthetic data) only one batch of samples to render."""
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.data.num_frames = num_frames
        for split in ("num_train", "num_val", "num_test"):
            if split in cfg.data:
                cfg.data[split] = cfg.data.batch_size
        cfg.train, cfg.test, cfg.ckpt_path = True, False, None
        cfg.logger, cfg.callbacks = {}, {}
        cfg.paths.output_dir = str(output_dir)
        cfg.trainer.update(
            max_steps=1, max_epochs=1, min_epochs=None, limit_train_batches=1, limit_val_batches=0,
            num_sanity_val_steps=0, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False,
        )
    return cfg


class OneStepTrial:
    """Trains one step of ``cfg`` at a given length and judges it against the memory limit.

    Args:
        cfg: a composed training config (attention, model, data, trainer chosen).
        memory_cap_bytes: largest allowed peak (host RSS on CPU, allocated memory on a GPU); None = only a real
            out-of-memory error fails (required on CPU, where there is no such error before the machine swaps).
        run_fn: :func:`hierarchicalvlm.run.pipeline.run`-compatible function (injectable for tests).
    """

    def __init__(self, cfg: DictConfig, memory_cap_bytes: Optional[int], run_fn: Optional[Callable[..., Any]] = None):
        if memory_cap_bytes is not None and memory_cap_bytes <= 0:
            raise ValueError(f"memory cap must be positive, got {memory_cap_bytes} bytes")
        if run_fn is None:
            from hierarchicalvlm.run.pipeline import run as run_fn
        self.cfg = cfg
        self.cap = memory_cap_bytes
        self.run_fn = run_fn
        self.device: Optional[torch.device] = None

    def __call__(self, num_frames: int) -> Trial:
        free_memory()
        reset_all_peaks()
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="max_seq_len_") as tmp:
            cfg = one_step_config(self.cfg, num_frames, Path(tmp))
            try:
                result = self.run_fn(cfg)
                outcome, reason = "fits", None
            except ConfigError as err:
                outcome, reason, result = "invalid", str(err), partial_result(err)
            except (torch.cuda.OutOfMemoryError, MemoryError) as err:
                outcome, reason = "out_of_memory", f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                result = partial_result(err)
                err.__traceback__ = None
            except Exception as err:  # noqa: BLE001 - any other failure also means "does not train here"
                outcome, reason, result = "error", f"{type(err).__name__}: {err}", partial_result(err)
                err.__traceback__ = None
            self.device = result.device or self.device
            peak = peak_memory(self.device or torch.device("cpu"))
        free_memory()
        if outcome == "fits" and self.cap is not None and peak.bytes > self.cap:
            outcome, reason = "over_cap", f"peak {peak.gib:.2f} GiB {peak.kind} > cap {self.cap / GIB:.2f} GiB"
        return Trial(num_frames, outcome, peak.bytes, peak.kind, round(time.perf_counter() - started, 3), reason)


def search_mechanisms(
    cfg_for: Callable[[str], DictConfig],
    attentions: list[str],
    memory_cap_bytes: Optional[int],
    progress: Optional[Callable[[dict[str, Any]], None]] = None,
    **search_kwargs: Any,
) -> dict[str, Any]:
    """Run the search for each mechanism; ``cfg_for(attention)`` composes its config. Returns the JSON document.

    ``progress``: called after every trial with the document so far (``partial``: True), e.g. to write it."""
    results: dict[str, Any] = {}
    device: Optional[torch.device] = None
    batch_size = None

    def document(partial: bool) -> dict[str, Any]:
        kind = "device (allocated)" if device is not None and device.type == "cuda" else "host RSS"
        limit = (f"peak {kind} <= {memory_cap_bytes / GIB:.2f} GiB" if memory_cap_bytes is not None
                 else "until torch.cuda.OutOfMemoryError")
        return {"created_at": now_iso(), "device": device_name(device), "limit": limit, "batch_size": batch_size,
                "search": search_kwargs, "results": dict(results), **({"partial": True} if partial else {})}

    for attention in attentions:
        cfg = cfg_for(attention)
        batch_size = OmegaConf.select(cfg, "data.batch_size", default=None)
        trial = OneStepTrial(cfg, memory_cap_bytes)
        try:
            per_frame: Optional[int] = tokens_per_frame(cfg)
        except ConfigError:
            per_frame = None

        def record(result: SearchResult) -> None:
            # called only while this mechanism's search runs, so the loop's current names are the right ones
            nonlocal device
            result.tokens_per_frame = per_frame
            results[result.attention] = result.as_dict()
            device = trial.device or device

        def save_so_far(result: SearchResult) -> None:
            record(result)
            progress(document(partial=True))

        record(search_max_frames(attention, trial, on_trial=save_so_far if progress else None, **search_kwargs))
    return document(partial=False)


def write_max_len(document: dict[str, Any], path: Path) -> None:
    write_json_atomic(Path(path), document)
