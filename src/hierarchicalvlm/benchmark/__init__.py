"""Forward+backward time and peak memory of every attention mechanism against full attention, over sequence length.

Why: the project promises speed-ups (strided 2x, local+global 4x, Performer 8x+, Mamba 10x+ over standard attention);
this module measures what the mechanisms of ``conf/attention/`` actually cost, on the machine at hand, so that
claims can be checked and crossover lengths (from where a mechanism beats full attention) read off.

What one *cell* (a mechanism at one sequence length) measures:

* every length processes the same number of tokens (``batch = batch_tokens // length``), so cells are comparable;
* one step = forward of a ``(batch, length, dim)`` input that requires grad, backward from a fixed random upstream
  gradient (no loss: the step costs the layer only), gradients freed;
* time: warm-up calls (never timed: the first call may compile), then the median of ``repeats`` timed calls
  (on GPU CUDA events between calls queued back to back, as a training loop issues them, so host overhead counts
  only where it outlasts the device's work; ``perf_counter`` on CPU);
* memory: on CUDA the allocator's peak during one warm step, raw and minus what was allocated before it (inputs and
  weights) = "activation" memory; on CPU the growth of the process's peak RSS over the first step, measured in a
  fresh process per cell (host memory, includes allocator slack).

Besides the mechanisms (built from ``conf/attention/<name>.yaml`` exactly as the model builds them, with the
knobs overridable), GPU runs add every SDPA backend of full attention, optional *external* baselines (FlexAttention
masks, flash-linear-attention, mamba-ssm's Triton scan; each only if importable) and our own attention *cores*
without projections, so that core-vs-core comparisons are fair.

Modules: ``settings`` (what to run), ``cases`` (what one fwd+bwd of each case is), ``measure`` (timing,
memory, isolation, the sweep), ``report`` (csv, markdown, plots), ``cli`` (the command line).

Results go to ``results.csv``, ``results.md`` (tables, speed-ups, crossovers), two log-log plots and
``meta.json``.  The CLI is ``scripts/bench_attention.py`` (or ``python -m hierarchicalvlm.benchmark``).
"""

from .cases import CaseSpec, case_catalogue, plan_cases
from .cli import main
from .measure import BenchmarkReport, CellResult, run_benchmark, run_cell
from .report import render_markdown, write_report
from .settings import BenchSettings, build_mechanism, mechanism_config

__all__ = [
    "BenchSettings",
    "BenchmarkReport",
    "CaseSpec",
    "CellResult",
    "build_mechanism",
    "case_catalogue",
    "main",
    "mechanism_config",
    "plan_cases",
    "render_markdown",
    "run_benchmark",
    "run_cell",
    "write_report",
]
