"""The FP16 benchmark's machinery on CPU (the GPU tier runs it for real): interleaving, windows, tags."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from greenbench.energy.estimate import CpuTimeEstimateMeter
from greenbench.energy.meter import ESTIMATED
from greenbench.nn.fp16 import (
    PAPER,
    SERIES,
    benchmark_network,
    inference_pass,
    math_mode,
    math_mode_record,
    paper_loader,
    paper_pass,
)
from greenbench.nn.models import build_network


def test_benchmark_interleaves_every_series_and_tags_estimates():
    model = build_network("lenet5", seed=0)
    x = torch.randn(64, 3, 32, 32)
    labels = np.zeros(64, dtype=np.int64)
    lines = []
    bench = benchmark_network("lenet5", model, x, labels, CpuTimeEstimateMeter(), "cpu", runs=3, kernel_runs=2,
                              batch_size=32, min_window_s=0.01, idle_seconds=0.05, progress=lines.append,
                              warmup_windows=2)
    assert [len(bench.runs[s]) for s in SERIES] == [2, 2, 2, 3, 3]  # the kernel loop's three, the paper loop's two
    order = [line.split(": ")[0].split()[-1] for line in lines]
    assert order == [*SERIES, *SERIES[::-1], *SERIES[3:]]  # drift cancels across pairs
    assert bench.sources() == {ESTIMATED}
    assert bench.energy("fp32").shape == (2,) and np.all(bench.time("paper:fp16") > 0)
    assert bench.predictions["fp32"].shape == (64,) and bench.idle_power_w is not None
    assert np.array_equal(bench.predictions["fp32"], bench.predictions[PAPER + "fp32-default"])
    assert bench.math_modes["fp32"]["cudnn.allow_tf32"] is False and bench.math_modes["paper:fp16"] == {
        **bench.math_modes["paper:fp16"], "loop": "paper", "autocast": "float16", "cudnn.deterministic": True}
    with pytest.raises(ValueError, match="unknown series"):
        benchmark_network("lenet5", model, x, labels, CpuTimeEstimateMeter(), "cpu", series=("fp8",))


class _BrokenMeter(CpuTimeEstimateMeter):
    def __init__(self, fails_in: str):
        super().__init__()
        self.fails_in = fails_in

    def _start_reading(self):
        if self.fails_in == "begin":
            raise RuntimeError("tracker could not start")
        return super()._start_reading()

    def _measurement(self, start):
        raise RuntimeError("tracker lost its data")


@pytest.mark.parametrize("fails_in", ["begin", "end"])
def test_a_failing_series_meter_empties_its_column_not_the_benchmark(fails_in):
    bench = benchmark_network("lenet5", build_network("lenet5", seed=0), torch.randn(8, 3, 32, 32), None,
                              CpuTimeEstimateMeter(), "cpu", runs=2, min_window_s=0.0, idle_seconds=0.0,
                              warmup_windows=2, series=("fp32",), series_meter=_BrokenMeter(fails_in))
    assert len(bench.runs["fp32"]) == 2 and bench.series is None
    assert bench.series_error == ("RuntimeError: tracker could not start" if fails_in == "begin"
                                  else "RuntimeError: tracker lost its data")


def test_math_modes_set_tf32_as_named_and_restore_the_flags():
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = (cudnn.allow_tf32, matmul.allow_tf32, cudnn.deterministic, cudnn.benchmark)
    with math_mode("fp32", deterministic=True):
        assert (cudnn.allow_tf32, matmul.allow_tf32, cudnn.deterministic, cudnn.benchmark) == (False, False, True,
                                                                                               False)
    with math_mode("fp32-default"):  # PyTorch's defaults: TF32 convolutions, IEEE matmuls
        assert (cudnn.allow_tf32, matmul.allow_tf32) == (True, False)
    assert (cudnn.allow_tf32, matmul.allow_tf32, cudnn.deterministic, cudnn.benchmark) == before
    assert math_mode_record("fp32")["loop"] == "kernel" and math_mode_record("paper:fp16")["loop"] == "paper"


def test_the_paper_loop_predicts_what_the_kernel_loop_does():
    model = build_network("lenet5", seed=0).eval()
    x = torch.randn(70, 3, 32, 32)
    loader = paper_loader(x, workers=1)
    assert loader.batch_size == 32 and loader.num_workers == 1
    kernel = inference_pass(model, list(torch.split(x, 32)), "fp32-default")
    assert torch.equal(paper_pass(model, loader, "fp32-default", "cpu"), kernel)
    with pytest.raises(ValueError, match="no inputs"):
        paper_loader(x[:0])


def test_fp16_pass_runs_under_autocast_in_half():
    seen = []
    model = build_network("lenet5", seed=0).eval()
    model.features[0].register_forward_hook(lambda m, i, o: seen.append((i[0].dtype, o.dtype)))
    inference_pass(model, [torch.randn(4, 3, 32, 32)], "fp16")
    assert seen == [(torch.float16, torch.float16)]
    with pytest.raises(ValueError, match="unknown precision"):
        inference_pass(model, [torch.randn(1, 3, 32, 32)], "int8")


def test_rounded_fp16_computes_on_half_numbers_and_leaves_the_model_alone():
    from greenbench.nn.fp16 import ROUNDED_FP16, half_rounded

    model = build_network("lenet5", seed=0).eval()
    before = [p.detach().clone() for p in model.parameters()]
    rounded = half_rounded(model)
    outputs = []
    for module in rounded.modules():
        module.register_forward_hook(lambda m, i, o: outputs.append(o))
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        logits = rounded(x.half().float())
    assert all(torch.equal(o, o.half().float()) for o in outputs)  # every output is a float16 number
    assert all(torch.equal(p, p.half().float()) for p in rounded.parameters())
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.float16):
            amp = model(x.half())
    torch.testing.assert_close(logits, amp.float(), rtol=2e-2, atol=2e-2)
    assert torch.equal(inference_pass(model, [x], ROUNDED_FP16), logits.argmax(1))
