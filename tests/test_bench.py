"""The attention benchmark: a tiny sweep writes every output, memory is measured in fresh processes, bad names fail.

Sizes are tiny (dim 32, lengths 64/128) so the whole file runs in well under a minute on two CPU cores.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from hierarchicalvlm.benchmark import BenchSettings, CaseSpec, CellResult, main, mechanism_config
from hierarchicalvlm.benchmark.cases import case_catalogue, flex_mask_mod, import_mamba_chunk_scan
from hierarchicalvlm.benchmark.measure import fastest_full_rows, run_cell_in_subprocess, settings_to_argv, time_calls
from hierarchicalvlm.benchmark.report import crossover_length, speedup
from hierarchicalvlm.benchmark.settings import DEFAULT_CONF_DIR, available_mechanisms

ROOT = Path(__file__).resolve().parents[1]
MECHANISMS = available_mechanisms(DEFAULT_CONF_DIR)
CORES = ("favor_core", "causal_linear_attn_core", "ssd_core")
TINY = ["--lengths", "64,128", "--dim", "32", "--heads", "4", "--batch-tokens", "256", "--repeats", "1",
        "--threads", "1"]


def read_rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


def settings(**changes) -> BenchSettings:
    base = BenchSettings(
        device="cpu", lengths=(64, 128), dim=32, heads=4, batch_tokens=256, precision="fp32", warmup=1, repeats=1,
        mechanisms=tuple(MECHANISMS), overrides={}, cores=False, baselines=False, isolation="none",
        conf_dir=str(DEFAULT_CONF_DIR), threads=1,
    )
    return dataclasses.replace(base, **changes)


def cell(name: str, length: int, ms: float, status: str = "ok", mib: float = 1.0) -> CellResult:
    return CellResult(name, "ours", "layer", length, 1, "fp32", "test", fwd_bwd_ms=ms, activation_mib=mib,
                      status=status)


# ----------------------------------------------------------------------------- the sweep and its outputs


def test_sweep_writes_csv_markdown_plots_and_meta_with_a_row_per_cell(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench"
    assert main([*TINY, "--cores", "--isolation", "none", "--out", str(out)]) == 0

    rows = read_rows(out)
    expected = {(name, length) for name in (*MECHANISMS, *CORES) for length in (64, 128)}
    assert {(r["mechanism"], int(r["length"])) for r in rows} == expected and len(rows) == len(expected)
    for row in rows:
        assert row["status"] == "ok", row
        assert float(row["fwd_bwd_ms"]) > 0
        assert int(row["batch"]) == 256 // int(row["length"])
        assert row["kind"] == "ours" and row["scope"] == ("core" if row["mechanism"] in CORES else "layer")
        assert row["dtype"] == "fp32" and row["torch"] == torch.__version__ and row["device"]

    markdown = (out / "results.md").read_text()
    for name in (*MECHANISMS, *CORES):
        assert f"| {name} |" in markdown
    assert "## Speed-up over `full`" in markdown and "crossover" in markdown
    assert capsys.readouterr().out.strip().endswith(markdown.strip().splitlines()[-1])  # the table is printed last

    for plot in ("time_vs_length.png", "memory_vs_length.png"):
        data = (out / plot).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000

    meta = json.loads((out / "meta.json").read_text())
    assert meta["torch"] == torch.__version__ and "cores" in meta["device"]
    assert "--lengths 64,128" in meta["command"] and meta["settings"]["lengths"] == [64, 128]

    (out / "results.md").unlink()
    assert main(["--render-only", "--out", str(out)]) == 0  # tables and plots again, from the csv and meta.json
    rerendered = (out / "results.md").read_text()
    assert [line.split("|")[1] for line in rerendered.splitlines() if line.startswith("| ")] == [
        line.split("|")[1] for line in markdown.splitlines() if line.startswith("| ")
    ]


def test_fresh_process_cells_report_host_memory(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ["--lengths", "512", "--dim", "64", "--heads", "4", "--batch-tokens", "4096", "--repeats", "1",
            "--threads", "1", "--mechanisms", "full,performer", "--isolation", "process", "--out", str(out)]
    assert main(args) == 0
    rows = {r["mechanism"]: r for r in read_rows(out)}
    assert set(rows) == {"full", "performer"}
    for row in rows.values():
        assert row["status"] == "ok" and float(row["fwd_bwd_ms"]) > 0
        assert float(row["peak_mib"]) >= float(row["activation_mib"]) > 0
    # Performer keeps phi(q), phi(k) of 4096 tokens x 4 heads x 256 features (float32) for backward: 2 x 16 MiB.
    assert float(rows["performer"]["activation_mib"]) >= 30


def test_single_mode_in_a_subprocess_returns_a_memory_figure() -> None:
    run = settings(lengths=(1024,), dim=64, batch_tokens=4096, overrides={"performer": {"num_features": 512}})
    spec = case_catalogue(run)["performer"]
    result = run_cell_in_subprocess(spec, run, 1024)  # = python -m hierarchicalvlm.benchmark --single ...
    assert result.status == "ok", result
    assert result.batch == 4 and result.fwd_bwd_ms > 0
    # phi(q), phi(k): 4096 tokens x 4 heads x 512 features x 4 bytes = 32 MiB each, both saved for backward.
    assert result.peak_mib >= result.activation_mib >= 60
    assert "host" in result.memory


def test_single_flag_prints_one_json_result(capsys) -> None:
    assert main(["--single", "--mechanism", "strided", "--length", "64", *TINY[2:]]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("BENCH_CELL ")
    payload = json.loads(line[len("BENCH_CELL "):])
    assert payload["mechanism"] == "strided" and payload["status"] == "ok" and payload["fwd_bwd_ms"] > 0
    assert not math.isnan(payload["activation_mib"])


def test_compile_layers_runs_each_layer_under_torch_compile_and_says_so() -> None:
    from hierarchicalvlm.benchmark.cases import layer_workload
    from hierarchicalvlm.benchmark.report import layer_mode

    compiled = settings(compile_layers=True)
    workload = layer_workload(torch.nn.Linear(32, 32), compiled, length=16, batch=2)
    module, run, x = workload.keep
    assert isinstance(run, torch._dynamo.eval_frame.OptimizedModule) and run._orig_mod is module
    workload.step()  # compiles, runs forward + backward, frees the gradients
    assert x.grad is None and module.weight.grad is None
    eager = layer_workload(torch.nn.Linear(32, 32), settings(), length=16, batch=2)
    assert eager.keep[1] is eager.keep[0]
    assert "torch.compile(dynamic=False)" in layer_mode(compiled) and "eager" in layer_mode(settings())
    assert "--compile-layers" in settings_to_argv(compiled) and "--compile-layers" not in settings_to_argv(settings())


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mechanisms", "full,nope"], "unknown mechanism 'nope'; choose from: full, local, local_global"),
        (["--single", "--mechanism", "nope", "--length", "64"], "unknown mechanism 'nope'"),
        (["--set", "strided.strid=2"], "strided has no knob 'strid'; choose from: causal, dropout, kernel, qkv_bias, stride"),
        (["--set", "nope.stride=2"], "unknown mechanism 'nope'"),
        (["--set", "strided.dim=64"], "use --dim / --heads"),
        (["--set", "stride=2"], "--set expects MECHANISM.KEY=VALUE"),
        (["--warmup", "0"], "--warmup must be >= 1"),
        (["--dim", "30", "--heads", "4"], "--dim 30 must be divisible by --heads 4"),
        (["--set", "strided.stride=0"], "stride must be a positive number"),
        (["--render-only"], "has no results.csv and meta.json to render"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    assert main([*TINY, *args, "--out", str(tmp_path)]) == 2  # TINY: a missed check must not start a long run
    assert message in capsys.readouterr().err
    assert not (tmp_path / "results.csv").exists()


def test_cuda_request_without_cuda_is_a_clear_error(capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


# ----------------------------------------------------------------------------- configs and masks


def test_overrides_reach_the_mechanism_with_yaml_types() -> None:
    run = settings(overrides={"local_global": {"window_size": 16, "num_global_tokens": 0}})
    cfg = mechanism_config("local_global", run.overrides, run.conf_dir)
    assert cfg.window_size == 16 and cfg.num_global_tokens == 0
    assert main(["--list", "--set", "local_global.window_size=16", "--set", "local_global.causal=true"]) == 0


def test_flex_baseline_masks_are_the_reference_patterns() -> None:
    flex = pytest.importorskip("torch.nn.attention.flex_attention")
    from hierarchicalvlm.attention.ops.reference import local_global_mask, strided_mask

    run = settings(overrides={"local_global": {"window_size": 12, "num_global_tokens": 3}, "strided": {"stride": 5}})
    n = 96
    mask_mod, _ = flex_mask_mod("flex_strided", run)
    assert torch.equal(flex.create_mask(mask_mod, None, None, n, n, device="cpu")[0, 0], strided_mask(n, 5))
    mask_mod, description = flex_mask_mod("flex_local_global", run)
    expected = local_global_mask(n, 12, torch.arange(3))  # the first 3 tokens global
    assert torch.equal(flex.create_mask(mask_mod, None, None, n, n, device="cpu")[0, 0], expected)
    assert "|q-k| <= 6" in description


# ----------------------------------------------------------------------------- the analysis


def test_speedup_and_crossover_follow_their_definitions() -> None:
    lengths = [512, 1024, 2048, 4096]
    full = [cell("full", n, ms) for n, ms in zip(lengths, [1.0, 2.0, 8.0, 32.0])]
    steady = [cell("steady", n, ms) for n, ms in zip(lengths, [2.0, 2.5, 4.0, 8.0])]  # faster from 2048 on
    dip = [cell("dip", n, ms) for n, ms in zip(lengths, [0.5, 4.0, 4.0, 8.0])]  # faster at 512, then not at 1024
    never = [cell("never", n, ms) for n, ms in zip(lengths, [2.0, 4.0, 16.0, 64.0])]
    rows = full + steady + dip + never
    assert speedup(full[2], steady[2]) == pytest.approx(2.0)
    assert crossover_length(rows, "steady", "full", lengths) == 2048
    assert crossover_length(rows, "dip", "full", lengths) == 2048  # must hold at every longer length
    assert crossover_length(rows, "never", "full", lengths) is None

    full_oom = full[:3] + [cell("full", 4096, math.nan, status="OOM")]
    assert speedup(full_oom[3], never[3]) == math.inf
    assert crossover_length(full_oom + never, "never", "full", lengths) == 4096  # only it ran at 4096
    mech_oom = steady[:3] + [cell("steady", 4096, math.nan, status="OOM")]
    assert crossover_length(full + mech_oom, "steady", "full", lengths) is None


def test_fastest_full_row_takes_the_quickest_backend_per_length() -> None:
    rows = [cell("full[flash]", 1024, 3.0), cell("full[cudnn]", 1024, 2.0), cell("full[efficient]", 1024, 4.0),
            cell("full[flash]", 2048, math.nan, "OOM"), cell("full[cudnn]", 2048, math.nan, "OOM"),
            cell("full[efficient]", 2048, math.nan, "error: RuntimeError: no kernel")]
    derived = {r.length: r for r in fastest_full_rows(rows)}
    assert derived[1024].mechanism == "full (fastest)" and derived[1024].fwd_bwd_ms == 2.0
    assert "full[cudnn]" in derived[1024].note
    assert derived[2048].status == "OOM" and math.isnan(derived[2048].fwd_bwd_ms)


# ----------------------------------------------------------------------------- GPU-only paths


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_sweep_runs_every_backend_and_reports_allocator_memory(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    assert main(["--device", "cuda", "--lengths", "256,512", "--dim", "64", "--heads", "4", "--batch-tokens", "1024",
                 "--repeats", "2", "--warmup", "2", "--out", str(out)]) == 0
    rows = read_rows(out)
    ours = [r for r in rows if r["kind"] == "ours" and not r["mechanism"].startswith("full[")]
    assert ours and all(r["status"] == "ok" and float(r["activation_mib"]) > 0 for r in ours), ours
    assert {r["mechanism"] for r in rows} >= {"full (fastest)", "full[flash]", "full[cudnn]", "full[efficient]"}
    markdown = (out / "results.md").read_text()
    assert "## Speed-up over `full (fastest)`" in markdown and "queued back to back" in markdown


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("synchronize_each", [False, True])
def test_cuda_timing_gives_one_device_time_per_call(synchronize_each: bool) -> None:
    matrix = torch.randn(1024, 1024, device="cuda")
    calls = []

    def step() -> None:
        calls.append(matrix @ matrix)

    times = time_calls(step, "cuda", 6, synchronize_each)
    assert len(times) == len(calls) == 6 and all(math.isfinite(t) and t > 0 for t in times), times


def test_mamba_ssm_source_imports_without_running_its_package_init() -> None:
    pytest.importorskip("triton")
    source = ROOT / ".gpu_baselines" / "mamba_src" / "mamba_ssm"
    if not source.is_dir():
        pytest.skip("no mamba-ssm source tree in .gpu_baselines")
    saved = {name: module for name, module in sys.modules.items() if name.startswith("mamba_ssm")}
    try:
        scan = import_mamba_chunk_scan(str(source))
        assert callable(scan) and scan.__module__ == "mamba_ssm.ops.triton.ssd_combined"
        assert not hasattr(sys.modules["mamba_ssm"], "__version__")  # the real __init__ never ran
    finally:
        for name in [n for n in sys.modules if n.startswith("mamba_ssm") and n not in saved]:
            del sys.modules[name]


def test_mamba_ssm_baseline_needs_the_package_or_a_real_source_folder(monkeypatch) -> None:
    from hierarchicalvlm.benchmark import cases

    monkeypatch.setattr(cases, "mamba_ssm_kernel", lambda: None)
    with pytest.raises(ImportError, match=r"pip install -e '.\[gpu\]', or pass --mamba-ssm-src"):
        import_mamba_chunk_scan(None)
    with pytest.raises(ImportError, match="no ops/triton/ssd_combined.py"):
        import_mamba_chunk_scan(str(ROOT))


def test_spec_names_are_unique_and_gpu_cases_only_on_cuda() -> None:
    cpu = case_catalogue(settings())
    assert set(cpu) == set(MECHANISMS) | set(CORES)
    assert all(isinstance(spec, CaseSpec) and spec.name == name for name, spec in cpu.items())


def test_ceilings_measure_a_positive_matmul_rate_and_copy_bandwidth() -> None:
    from hierarchicalvlm.benchmark.ceilings import measure_ceilings

    result = measure_ceilings("cpu", matmul_size=128, copy_gib=0.002, repeats=2)
    assert result["matmul"]["tflops"] > 0 and result["copy"]["gbps"] > 0
    assert result["matmul"]["dtype"] == "float32" and result["device"]
    with pytest.raises(ValueError, match="must be positive"):
        measure_ceilings("cpu", matmul_size=0, copy_gib=0.002)


def test_capped_autotuning_keeps_the_first_configs_of_autotuners_built_inside() -> None:
    triton = pytest.importorskip("triton")
    from hierarchicalvlm.benchmark.cases import capped_autotuning

    def kernel(x):  # never launched: only its autotuner is built
        pass

    configs = [triton.Config({"BLOCK": size}) for size in (16, 32, 64, 128)]
    with capped_autotuning(2):
        capped = triton.autotune(configs=configs, key=[])(triton.jit(kernel))
    with capped_autotuning(0):
        uncapped = triton.autotune(configs=configs, key=[])(triton.jit(kernel))
    after = triton.autotune(configs=configs, key=[])(triton.jit(kernel))
    assert [c.kwargs["BLOCK"] for c in capped.configs] == [16, 32]
    assert len(uncapped.configs) == len(after.configs) == 4


def test_skipped_cases_are_left_out_with_the_reason() -> None:
    from hierarchicalvlm.benchmark.cases import plan_cases

    cases, not_run = plan_cases(settings(skip=("strided", "no_such_case")))
    assert "strided" not in {c.name for c in cases} and "full" in {c.name for c in cases}
    assert not_run == {"strided": "left out (--skip)"}


def test_a_skipped_baseline_is_never_imported(monkeypatch) -> None:
    """Planning a GPU run probes each external baseline by importing it, except those --skip leaves out."""
    from hierarchicalvlm.benchmark import cases as cases_module

    baselines = ("flex_local_global", "flex_strided", "fla_chunk_linear_attn", "mamba_ssm_chunk_scan")
    catalogue = {name: CaseSpec(name, "baseline", "layer", name) for name in baselines}
    probed: list[str] = []
    monkeypatch.setattr(cases_module, "case_catalogue", lambda settings: catalogue)
    monkeypatch.setattr(cases_module, "baseline_unavailable_reason",
                        lambda family, settings: probed.append(family) or None)
    planned, not_run = cases_module.plan_cases(
        settings(device="cuda", mechanisms=(), baselines=True, skip=("fla_chunk_linear_attn", "mamba_ssm_chunk_scan")))
    assert probed == ["flex_local_global", "flex_strided"]
    assert [c.name for c in planned] == ["flex_local_global", "flex_strided"]
    assert not_run == {name: "left out (--skip)" for name in ("fla_chunk_linear_attn", "mamba_ssm_chunk_scan")}


def test_a_run_stopped_midway_keeps_its_cells_and_renders_as_partial(tmp_path: Path, monkeypatch) -> None:
    """A time limit (here an interrupt at the third cell) must not lose the cells already measured."""
    from hierarchicalvlm.benchmark import measure

    measured = measure.run_one
    calls = []

    def stop_at_the_third(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return measured(*args, **kwargs)

    monkeypatch.setattr(measure, "run_one", stop_at_the_third)
    out = tmp_path / "bench"
    with pytest.raises(KeyboardInterrupt):
        main([*TINY, "--mechanisms", "full,strided", "--isolation", "none", "--out", str(out)])
    assert [(r["mechanism"], r["length"]) for r in read_rows(out)] == [("full", "64"), ("full", "128")]
    assert json.loads((out / "meta.json").read_text())["partial"] is True
    assert main(["--render-only", "--out", str(out)]) == 0
    assert "**Partial run:** it stopped after 2 of 4 planned cells" in (out / "results.md").read_text()


@pytest.mark.parametrize("specialized", [True, False])
def test_in_process_sweeps_compile_every_length_with_static_shapes(specialized: bool) -> None:
    """Without specialize_every_length, dynamo recompiles a second length with a symbolic one (the slow
    FlexAttention kernels of in-process GPU sweeps); with it, every length gets a graph of its own static shape."""
    from hierarchicalvlm.benchmark.cases import specialize_every_length

    symbolic_graphs: list[bool] = []

    def recording_backend(graph, example_inputs):
        values = [node.meta.get("example_value") for node in graph.graph.nodes if node.op == "placeholder"]
        symbolic_graphs.append(any(isinstance(value, torch.SymInt) or (isinstance(value, torch.Tensor) and any(
            isinstance(size, torch.SymInt) for size in value.shape)) for value in values))
        return graph.forward

    torch._dynamo.reset()
    with torch._dynamo.config.patch(automatic_dynamic_shapes=True):
        if specialized:
            specialize_every_length()
        double = torch.compile(lambda x: x * 2, backend=recording_backend)
        for length in (8, 16, 32):
            double(torch.ones(length))
    torch._dynamo.reset()
    assert symbolic_graphs == ([False, False, False] if specialized else [False, True])


def test_a_run_stopped_after_its_last_cell_says_so(tmp_path: Path, monkeypatch) -> None:
    """Stopped in the agreement check (after every cell was saved): the report must not call its cells missing."""
    from hierarchicalvlm.benchmark import measure

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(measure, "fastest_full_rows", interrupted)
    out = tmp_path / "bench"
    with pytest.raises(KeyboardInterrupt):
        main([*TINY, "--mechanisms", "full,strided", "--isolation", "none", "--out", str(out)])
    assert len(read_rows(out)) == 4
    assert main(["--render-only", "--out", str(out)]) == 0
    text = (out / "results.md").read_text()
    assert "**Partial run:** it measured all 4 planned cells and stopped after them" in text
    assert "missing" not in text


def test_gpu_meta_names_the_flex_masks_of_planned_cases_only(monkeypatch) -> None:
    """A run without the FlexAttention baselines must not describe masks (from default knobs) it never ran."""
    from hierarchicalvlm.benchmark import measure
    from hierarchicalvlm.benchmark.measure import collect_meta

    monkeypatch.setattr(measure, "device_name", lambda device: "a GPU")  # the only CUDA query of collect_meta

    flex = CaseSpec("flex_local_global", "baseline", "layer", "flex")
    core = CaseSpec("ssd_core", "ours", "core", "ssd_core")
    gpu = settings(device="cuda", mechanisms=())
    assert list(collect_meta(gpu, [flex, core], {}, 0.0)["flex_masks"]) == ["flex_local_global"]
    assert collect_meta(gpu, [core], {}, 0.0)["flex_masks"] == {}
