"""The thesis's claims on a user's own model (`greenbench model PATH`): ONNX, safetensors or a state dict.

For any model: the weights' distribution fit (eight families, ranked by SSE and by KL), the
rate–distortion of the weights per quantizer family (entropy and SNR of every setting of the
thesis grid) and, per family, the real coded bytes of the setting closest to 8× (CR = 32/H).
With an ONNX graph and inputs (`--data FILE.npz`), the thesis grid's budget search: on labelled
data the budget is top-1 (and top-5) accuracy loss in pp; on inputs alone it is a label-free
fidelity loss against the FP32 model's own outputs — top-1 agreement for classifiers, output SNR
(dB) otherwise. The best setting per family is reported with H, CR = 32/H and the real container
size.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from greenbench.analysis.distributions import fit_families
from greenbench.coding.container import encode_container
from greenbench.coding.entropy import FP32_BITS, encode_indices, entropy_bits
from greenbench.coding.weights import OnnxCodecError, load_onnx, weights
from greenbench.nn.budget import (
    NetworkStudy,
    OutputSnrEvaluator,
    budget_search,
    covering_interval,
    select_families,
    study_network,
    thesis_grid,
)
from greenbench.nn.onnx_eval import run_onnx, session

MAX_FIT_SAMPLES = 200_000  # the MLE fits see a sample of the weights; histograms and rates use them all
SKIP_IN_STATE_DICT = ("running_mean", "running_var", "num_batches_tracked")  # BatchNorm statistics, not weights


class ModelFileError(ValueError):
    """A model or data file that cannot be studied: not a model, no float weights, bad data."""


@dataclass
class UserModel:
    path: Path
    kind: str  # "onnx", "safetensors" or "state dict"
    weights: dict[str, np.ndarray]  # float weights and biases by name
    proto: onnx.ModelProto | None = None

    @property
    def flat(self) -> np.ndarray:
        return np.concatenate([w.reshape(-1).astype(np.float64) for w in self.weights.values()])


def load_user_model(path: str | Path) -> UserModel:
    """An ONNX model, a safetensors file or a PyTorch state dict (loaded with weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    head = path.read_bytes()[:8]
    if path.suffix == ".onnx":
        try:
            proto = load_onnx(path)
        except OnnxCodecError as exc:
            raise ModelFileError(f"{path}: {exc}") from None
        model = UserModel(path, "onnx", {n: w for n, w in weights(proto).items()}, proto)
    elif path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelFileError(f"{path}: not a readable safetensors file ({exc})") from None
        model = UserModel(path, "safetensors", _float_tensors(tensors))
    elif path.suffix in (".pt", ".pth", ".bin") or head.startswith(b"PK"):
        model = UserModel(path, "state dict", _float_tensors(_state_dict(path)))
    else:
        raise ModelFileError(f"{path}: not a model greenbench reads (.onnx, .safetensors, or a PyTorch state dict "
                             ".pt/.pth/.bin)")
    if not model.weights:
        raise ModelFileError(f"{path}: holds no float weights (float16, float32 or float64) to study")
    bad = [n for n, w in model.weights.items() if not np.all(np.isfinite(w))]
    if bad:
        raise ModelFileError(f"{path}: weights {bad[:3]} hold NaN or inf")
    return model


def _state_dict(path: Path) -> dict[str, np.ndarray]:
    import pickle

    import torch

    if path.stat().st_size == 0:
        raise ModelFileError(f"{path}: is empty (0 bytes), not a PyTorch state dict")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, IndexError) as exc:
        # a junk or truncated file raises any of these inside torch's unpickler (IndexError for some bytes)
        raise ModelFileError(f"{path}: not a PyTorch state dict loadable with weights_only=True "
                             f"({(str(exc).splitlines() or [type(exc).__name__])[0]})") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):  # a training checkpoint
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ModelFileError(f"{path}: holds a {type(loaded).__name__}, not a state dict of tensors")
    return {k: v.detach().cpu().float().numpy() if v.dtype == torch.bfloat16 else v.detach().cpu().numpy()
            for k, v in loaded.items() if isinstance(v, torch.Tensor)}


def _float_tensors(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in tensors.items() if v.dtype.kind == "f" and v.size > 0
            and not k.endswith(SKIP_IN_STATE_DICT)}


@dataclass
class ModelData:
    inputs: np.ndarray
    labels: np.ndarray | None


def load_model_data(path: str | Path, model: UserModel) -> ModelData:
    """`inputs` (and optionally integer `labels`) from an .npz, checked against the model's input."""
    path = Path(path)
    if model.proto is None:
        raise ModelFileError(f"{model.path}: a weights-only file has no graph to run on {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"{path}: not a readable .npz ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ModelFileError(f"{path}: is a single array (.npy), not an .npz archive holding an 'inputs' array")
    with archive:
        if "inputs" not in archive.files:
            raise ModelFileError(f"{path}: holds {archive.files}, no 'inputs' array")
        inputs = archive["inputs"]
        labels = archive["labels"] if "labels" in archive.files else None
    if inputs.dtype.kind not in "fiu" or inputs.ndim < 2 or len(inputs) == 0 or not np.all(np.isfinite(inputs)):
        raise ModelFileError(f"{path}: inputs must be a non-empty array (N, …) of finite numbers (floats, or token "
                             f"ids), got {inputs.dtype} {inputs.shape}")
    expected = [d.dim_value if d.HasField("dim_value") else None
                for d in model.proto.graph.input[0].type.tensor_type.shape.dim][1:]
    if len(expected) != inputs.ndim - 1 or any(e is not None and e != s for e, s in zip(expected, inputs.shape[1:])):
        raise ModelFileError(f"{path}: inputs of shape {inputs.shape[1:]} per sample; the model takes "
                             f"{tuple('?' if e is None else e for e in expected)}")
    if labels is not None:
        if labels.dtype.kind not in "iu" or labels.shape != (len(inputs),):
            raise ModelFileError(f"{path}: labels must be {len(inputs)} integers, got {labels.dtype} {labels.shape}")
        classes = run_onnx(session(model.proto), inputs[:1]).shape[-1]
        if labels.min() < 0 or labels.max() >= classes:
            raise ModelFileError(f"{path}: labels span [{labels.min()}, {labels.max()}]; the model has {classes} "
                                 "outputs")
    return ModelData(inputs if inputs.dtype.kind in "iu" else inputs.astype(np.float32),
                     None if labels is None else labels.astype(np.int64))


def _setting_row(setting, w: np.ndarray, variance: float) -> dict[str, Any]:
    """Entropy of the indices and SNR of the reconstruction over the weights themselves (one pass each);
    `variance`: the weights', computed once for the whole grid."""
    quantizer = setting.make()
    q = quantizer.quantize(w)
    mse = float(np.mean((w - quantizer.dequantize(q)) ** 2))
    entropy = entropy_bits(q)
    return {"family": setting.family, "setting": setting.label, "entropy": entropy,
            "snr_db": math.inf if mse == 0 else 10 * math.log10(variance / mse),
            "cr": FP32_BITS / entropy if entropy > 0 else math.inf}


def study_user_model(model: UserModel, data: ModelData | None = None, budget_pp: float = 0.8,
                     min_snr_db: float = 30.0, families: Sequence[str] | None = None,
                     progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Everything `greenbench model` reports, as plain data (the JSON it writes)."""
    say = progress or (lambda _: None)
    w = model.flat
    out: dict[str, Any] = {"model": str(model.path), "kind": model.kind, "weights": int(w.size),
                           "tensors": len(model.weights),
                           "dtypes": sorted({str(t.dtype) for t in model.weights.values()}),
                           "original_entropy": entropy_bits(w.astype(np.float32).view(np.int32))}
    say(f"{model.path.name}: {w.size:,} weights in {len(model.weights)} tensors; fitting eight families")
    fit = fit_families(w, max_fit_samples=MAX_FIT_SAMPLES)
    out["fit"] = {"by_sse": list(fit.by_sse), "by_kl": list(fit.by_kl),
                  "laplace_rank_sse": fit.rank("laplace", "sse"), "laplace_rank_kl": fit.rank("laplace", "kl"),
                  "families": {f: {"sse": r.sse, "kl": r.kl} for f, r in fit.fits.items()}}
    interval = covering_interval(w)
    grid = select_families(thesis_grid(interval), families)
    say(f"rate–distortion of the weights over the thesis grid on [−{interval:g}, {interval:g}]")
    variance = float(np.var(w))
    rd_rows = [_setting_row(s, w, variance) for settings in grid.values() for s in settings]
    out["interval"] = interval
    out["rate_distortion"] = rd_rows
    out["coded_near_8x"] = _coded_near_8x(rd_rows, grid, w)
    if data is not None:
        out["budget"] = _budget_study(model, data, budget_pp, min_snr_db, families, say)
    return out


def _coded_near_8x(rows: list[dict[str, Any]], grid, w: np.ndarray) -> dict[str, Any]:
    """Per family, the setting whose CR is closest to 8 (≥ 8 where one is), with its real coded bytes."""
    settings = {s.label: s for family in grid.values() for s in family}
    out = {}
    for family in grid:
        candidates = [r for r in rows if r["family"] == family]
        above = [r for r in candidates if r["cr"] >= 8]
        row = min(above, key=lambda r: r["cr"]) if above else max(candidates, key=lambda r: r["cr"])
        coded = encode_indices(settings[row["setting"]].make().quantize(w))
        out[family] = {"setting": row["setting"], "entropy": row["entropy"], "cr": row["cr"],
                       "coded_bytes": len(coded.data), "real_cr": 4 * w.size / len(coded.data)}
    return out


def _budget_study(model: UserModel, data: ModelData, budget_pp: float, min_snr_db: float,
                  families: Sequence[str] | None, say: Callable[[str], None]) -> dict[str, Any]:
    reference = None if data.labels is not None else run_onnx(session(model.proto), data.inputs)
    if data.labels is not None:
        fidelity, labels = "top-1 and top-5 accuracy loss (pp) on the given labels", data.labels
    elif reference.ndim == 2 and reference.shape[1] >= 2:  # a classifier: its own predictions are the labels
        fidelity = "top-1 agreement loss (pp) against the FP32 model's own predictions (no labels)"
        labels = reference.argmax(1)
    else:
        say(f"budget search: output SNR ≥ {min_snr_db:g} dB against the FP32 outputs, {len(data.inputs)} inputs")
        evaluator = OutputSnrEvaluator(model.proto, data.inputs, reference)
        per_family = budget_search(evaluator, select_families(thesis_grid(evaluator.interval), families), min_snr_db)
        return {"fidelity": f"output SNR (dB) against the FP32 model's own outputs, at least {min_snr_db:g} dB",
                "budget": min_snr_db, "images": len(data.inputs), "evaluations": evaluator.evaluations,
                "points": [{"family": e.setting.family, "setting": e.setting.label, "entropy": e.entropy,
                            "snr_db": e.snr_db, "cr": e.compression_ratio} for e in evaluator.evaluated()],
                "best_per_family": {f: _best_row(model, e, {"snr_db": e.snr_db} if e else {})
                                    for f, e in per_family.items()}}
    say(f"budget search: {fidelity}, budget {budget_pp:g}, {len(data.inputs)} inputs")
    study: NetworkStudy = study_network(model.path.stem, model.proto, data.inputs, labels, budget_pp, families)
    result = study.to_json()
    result["fidelity"] = fidelity
    result["best_per_family"] = {f: _best_row(model, e, {"top1": e.top1, "loss_top1_pp": e.loss_top1_pp,
                                                         "loss_top5_pp": e.loss_top5_pp} if e else {})
                                 for f, e in study.per_family.items()}
    return result


def _best_row(model: UserModel, evaluation, extra: dict[str, Any]) -> dict[str, Any] | None:
    if evaluation is None:
        return None
    container = encode_container(model.proto, evaluation.setting.make())
    return {"setting": evaluation.setting.label, "entropy": evaluation.entropy, "cr": evaluation.compression_ratio,
            "container_bytes": len(container.data), "real_cr": container.real_cr, **extra}
