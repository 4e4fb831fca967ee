"""Quiet, honest run output: a model summary without an unmeasured "FLOPs: 0", and trainer switches that follow
the callbacks config (``callbacks.progress_bar: null`` really means no progress bar)."""

from __future__ import annotations

from typing import Any, Sequence

from lightning.pytorch.callbacks import Callback, ModelSummary, ProgressBar
from lightning.pytorch.callbacks import RichModelSummary as _LightningRichModelSummary
from lightning.pytorch.utilities.model_summary import get_human_readable_count


def trainer_switches(callbacks: Sequence[Callback]) -> dict[str, bool]:
    """``enable_progress_bar`` / ``enable_model_summary`` for the Trainer: on only when the callbacks config has one.

    Lightning adds its default progress bar and model summary back unless told not to, so setting
    ``callbacks.progress_bar: null`` alone would not silence a run."""
    return {
        "enable_progress_bar": any(isinstance(c, ProgressBar) for c in callbacks),
        "enable_model_summary": any(isinstance(c, ModelSummary) for c in callbacks),
    }


class RichModelSummary(_LightningRichModelSummary):
    """Lightning's rich layer table, without the FLOPs column and "Total FLOPs: 0" line when no FLOPs were counted.

    Lightning counts FLOPs only by running ``example_input_array``, which this model (dict batches of any length)
    does not set; the measured training FLOPs are logged by ``LongRangeThroughputMonitor`` instead (``perf/*``)."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        if total_flops:
            return _LightningRichModelSummary.summarize(summary_data, total_parameters, trainable_parameters,
                                                       model_size, total_training_modes, total_flops,
                                                       **summarize_kwargs)
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            table.add_column(name, justify="right" if name in ("Params", "Params per Device") else "left",
                             style="dim" if name == " " else None, no_wrap=name == "Name")
        for row in zip(*(values for _, values in columns)):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        frozen = total_parameters - trainable_parameters
        grid = Table.grid(expand=True)
        grid.add_column()
        for line in (
            f"[bold]Trainable params[/]: {get_human_readable_count(int(trainable_parameters))}",
            f"[bold]Non-trainable params[/]: {get_human_readable_count(int(frozen))}",
            f"[bold]Total params[/]: {get_human_readable_count(int(total_parameters))}",
            f"[bold]Total estimated model params size (MB)[/]: {model_size:.2f}",
            f"[bold]Modules in train mode[/]: {total_training_modes['train']}",
            f"[bold]Modules in eval mode[/]: {total_training_modes['eval']}",
        ):
            grid.add_row(line)
        console.print(grid)
