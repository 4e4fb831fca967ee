"""torch.compile readiness: no graph break in any attention path, one graph per padded length, and the
Performer redraw schedule kept outside compiled graphs."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.testing import CompileCounter

from hierarchicalvlm.attention import PerformerAttention
from hierarchicalvlm.attention.linear.performer import step_feature_redraws
from hierarchicalvlm.run.pipeline import build

from .test_configs import ATTENTIONS


def tiny_model_and_batch(make_cfg, *overrides: str):
    cfg = make_cfg(*overrides)
    datamodule, model, _ = build(cfg)
    datamodule.setup("fit")
    return model, next(iter(datamodule.train_dataloader()))


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_the_whole_model_compiles_to_one_graph(attention: str, make_cfg) -> None:
    model, batch = tiny_model_and_batch(make_cfg, f"attention={attention}")
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model.net)(batch)
    reasons = [r.reason.splitlines()[0] for r in explanation.break_reasons]
    assert explanation.graph_break_count == 0, reasons
    assert explanation.graph_count == 1


def test_one_graph_per_padded_length_whatever_the_padding(make_cfg) -> None:
    """Static shapes: a new length compiles once; without a padding flag, padded and unpadded batches of that
    length share the graph (it keeps the mask)."""
    model, batch = tiny_model_and_batch(make_cfg)
    torch._dynamo.reset()
    counter = CompileCounter()
    net = torch.compile(model.net, backend=counter, dynamic=False)
    net(batch)
    padded = {**batch, "frame_mask": batch["frame_mask"].clone()}
    padded["frame_mask"][0, -2:] = False
    net(padded)
    assert counter.frame_count == 1
    longer = {**batch, "frames": torch.cat([batch["frames"], batch["frames"]], dim=1),
              "frame_mask": torch.cat([batch["frame_mask"], batch["frame_mask"]], dim=1)}
    net(longer)
    assert counter.frame_count == 2


def test_the_training_loops_padding_flag_gives_at_most_two_graphs_per_length(make_cfg) -> None:
    """With the flag the training loop adds, unpadded batches run unmasked: one graph each for padded and not."""
    from hierarchicalvlm.models.lit_module import with_padding_flag

    model, batch = tiny_model_and_batch(make_cfg)
    torch._dynamo.reset()
    counter = CompileCounter()
    net = torch.compile(model.net, backend=counter, dynamic=False)
    padded = {**batch, "frame_mask": batch["frame_mask"].clone()}
    padded["frame_mask"][0, -2:] = False
    assert with_padding_flag(batch)["padded"] is False and with_padding_flag(padded)["padded"] is True
    for _ in range(2):
        net(with_padding_flag(batch))
        net(with_padding_flag(padded))
    assert counter.frame_count == 2
    torch.testing.assert_close(net(with_padding_flag(batch)).qa_logits, model.net(batch).qa_logits)


def test_compiled_forwards_leave_the_performer_redraw_to_the_training_loop(make_cfg) -> None:
    model, batch = tiny_model_and_batch(make_cfg, "attention=performer", "attention.feature_redraw_interval=2")
    layers = [m for m in model.net.modules() if isinstance(m, PerformerAttention)]
    before = [layer.projection.clone() for layer in layers]
    torch._dynamo.reset()
    compiled = torch.compile(model.net, backend="eager", dynamic=False)
    for _ in range(3):
        compiled(batch)
    assert all(layer.calls_since_redraw == 0 for layer in layers)
    for _ in range(3):
        step_feature_redraws(compiled)
    assert all(layer.calls_since_redraw == 1 for layer in layers)  # redrawn at the third call, then counted
    assert all(not torch.equal(layer.projection, old) for layer, old in zip(layers, before))
    model.net(batch)  # eager forwards keep counting by themselves
    assert all(layer.calls_since_redraw == 2 for layer in layers)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_no_graph_break_on_the_gpu_paths(attention: str, make_cfg) -> None:
    """On CUDA in bf16 the fused paths run (FlexAttention, the FAVOR+ and mamba-ssm Triton kernels as custom ops,
    the mamba layer's element-wise glue): the whole network must still trace as one graph. One eager call first,
    as the first training step of a shape does: it builds FlexAttention's block masks (outside any graph)."""
    from lightning.fabric.utilities.apply_func import move_data_to_device

    from hierarchicalvlm.models.lit_module import with_padding_flag

    model, batch = tiny_model_and_batch(make_cfg, f"attention={attention}", "model.net.dim=128", "model.net.num_heads=2")
    net, batch = model.net.cuda(), move_data_to_device(with_padding_flag(batch), "cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        net(batch)
        torch._dynamo.reset()
        explanation = torch._dynamo.explain(net)(batch)
    reasons = [r.reason.splitlines()[0] for r in explanation.break_reasons]
    print(f"{attention}: {explanation.graph_count} graph(s), {explanation.graph_break_count} break(s)")
    assert explanation.graph_break_count == 0, reasons
    assert explanation.graph_count == 1
