"""ONNX export of a torch network and its evaluation with onnxruntime: on its CUDA execution provider
where onnxruntime-gpu has one (a CUDA machine), else on the CPU; `providers()` says which.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import onnx

from greenbench.coding.weights import OPSET, load_onnx
from greenbench.core.settings import setting


def export_onnx(model: Any, input_shape: tuple[int, ...]) -> onnx.ModelProto:
    """Export a torch module in eval mode (BatchNorm folded into convolutions), batch axis dynamic."""
    import torch

    buffer = io.BytesIO()
    model = model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated but needs no extra packages
        torch.onnx.export(model, torch.zeros(1, *input_shape), buffer, dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["logits"], do_constant_folding=True,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return load_onnx(buffer.getvalue())


def providers() -> list[str]:
    """onnxruntime's execution providers in the order sessions use them: CUDA first where it is available."""
    import onnxruntime as ort

    return [p for p in ("CUDAExecutionProvider",) if p in ort.get_available_providers()] + ["CPUExecutionProvider"]


def session(proto: onnx.ModelProto, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads if threads is not None else setting("GREENBENCH_THREADS", 0)
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=providers())


def run_onnx(proto_or_session: Any, inputs: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Logits of the model on `inputs` (float32, N × C × H × W)."""
    sess = session(proto_or_session) if isinstance(proto_or_session, onnx.ModelProto) else proto_or_session
    first = sess.get_inputs()[0]
    name = first.name
    x = np.ascontiguousarray(inputs, dtype=np.int64 if first.type == "tensor(int64)" else np.float32)
    return np.concatenate([sess.run(None, {name: x[i:i + batch_size]})[0] for i in range(0, len(x), batch_size)])
