"""Seed 000's training protocol and deterministic evaluation; checkpoints with provenance.

Adam (lr 1e-3), ReduceLROnPlateau on validation loss (patience 5, factor 0.1), cross-entropy,
batch 32, seed 158763; the weights of the epoch with the best validation accuracy are kept.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from greenbench.core.provenance import atomic_write_json, provenance
from greenbench.core.validation import check_scalar
from greenbench.nn.data import SPLIT_SEED, Dataset, to_network_input, train_validation_split
from greenbench.nn.models import build_network, network_spec
from greenbench.nn.pruning import PRUNABLE

log = logging.getLogger(__name__)


def autocast_context(device: str, dtype: torch.dtype | None):
    """torch.autocast for `dtype` on `device`, or a no-op for full precision."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


@contextlib.contextmanager
def channels_last(model: nn.Module):
    """The model's convolution weights in channels-last layout, oneDNN's and cuDNN's fast one (CPU inference of
    the GoogLeNet fixture: 1.9× faster; the student's training steps: 1.6×); the layout is restored after,
    unless the model already had it (a nested use)."""
    was_dense = all(p.is_contiguous() for p in model.parameters() if p.dim() == 4)
    model.to(memory_format=torch.channels_last)
    try:
        yield model
    finally:
        if was_dense:
            model.to(memory_format=torch.contiguous_format)


@torch.no_grad()
def predict_logits(model: nn.Module, inputs: torch.Tensor, batch_size: int = 256, device: str = "cpu",
                   autocast_dtype: torch.dtype | None = None) -> np.ndarray:
    """Logits (float32) of `model` on `inputs`, in eval mode, without test-time augmentation."""
    model.eval().to(device)
    outputs = []
    with channels_last(model):
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start:start + batch_size].to(device, non_blocking=True)
            with autocast_context(device, autocast_dtype):
                outputs.append(model(batch).float().cpu())
    return torch.cat(outputs).numpy()


def _teacher_logits(teacher: nn.Module, inputs: torch.Tensor, shape: tuple[int, ...], device: str) -> np.ndarray:
    """On a CPU through onnxruntime (the GoogLeNet teacher on 48,000 images: 70 s against PyTorch's 140 s), else by
    PyTorch on the device."""
    if torch.device(device).type != "cpu":
        return predict_logits(teacher, inputs, device=device)
    from greenbench.nn.onnx_eval import export_onnx, run_onnx

    return run_onnx(export_onnx(teacher, shape), inputs.numpy())


@dataclass
class TrainingResult:
    network: str
    model: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    validation_accuracy: float = 0.0
    test_accuracy: float = 0.0
    seconds: float = 0.0


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean())


@dataclass
class _TrainingData:
    x_train: torch.Tensor
    y_train: torch.Tensor
    soft: torch.Tensor | None  # the teacher's temperature-softened outputs, when distilling
    x_val: torch.Tensor
    y_val: np.ndarray


def _check_training(epochs: int, batch_size: int, lr: float, train_limit: int | None, teacher: nn.Module | None,
                    temperature: float, alpha: float) -> None:
    check_scalar(epochs, "epochs", int, low=1)
    check_scalar(batch_size, "batch_size", int, low=1)
    if train_limit is not None:
        check_scalar(train_limit, "train_limit (None for every image)", int, low=1)
    check_scalar(lr, "lr", float, low=0, include_low=False)
    if teacher is not None:
        check_scalar(temperature, "the distillation temperature", float, low=0, include_low=False)
        check_scalar(alpha, "the distillation weight alpha", float, low=0, high=1)


def _training_data(network: str, dataset: Dataset, seed: int, train_limit: int | None, teacher: nn.Module | None,
                   temperature: float, device: str) -> _TrainingData:
    """Seed 000's 80/20 split as network inputs; with a teacher, its softened outputs once per image (offline)."""
    shape = network_spec(network).input_shape
    train_idx, val_idx = train_validation_split(len(dataset.train_images), seed)
    if train_limit is not None:  # a quick run: as many validation images as training images
        train_idx, val_idx = train_idx[:train_limit], val_idx[:train_limit]
    x_train = to_network_input(dataset.train_images[train_idx], shape)
    y_train = torch.from_numpy(dataset.train_labels[train_idx])
    soft = None
    if teacher is not None:
        soft = torch.softmax(torch.from_numpy(_teacher_logits(teacher, x_train, shape, device)) / temperature, 1)
    if torch.device(device).type == "cuda":  # staged once: per-batch host-to-device copies would dominate
        x_train, y_train = x_train.to(device), y_train.to(device)
        soft = soft.to(device) if soft is not None else None
    return _TrainingData(x_train, y_train, soft, to_network_input(dataset.train_images[val_idx], shape),
                         dataset.train_labels[val_idx])


def _pruned_masks(model: nn.Module) -> list[tuple[nn.Parameter, torch.Tensor]]:
    """(weight, where it is exactly 0) of each prunable layer that holds zeros."""
    return [(m.weight, m.weight.detach() == 0) for m in model.modules()
            if isinstance(m, PRUNABLE) and bool((m.weight == 0).any())]


def _train_epoch(model: nn.Module, data: _TrainingData, order: torch.Tensor, batch_size: int, optimiser, scaler,
                 amp_dtype: torch.dtype | None, device: str, temperature: float, alpha: float, bar_desc: str,
                 progress: bool, pruned: list[tuple[nn.Parameter, torch.Tensor]]) -> float:
    """One pass over the training images in `order`; the mean training loss."""
    from tqdm.auto import tqdm

    loss_fn = nn.CrossEntropyLoss()
    model.train()
    running = 0.0
    for start in tqdm(range(0, len(order), batch_size), desc=bar_desc, disable=not progress, leave=False):
        idx = order[start:start + batch_size].to(data.x_train.device)
        xb, yb = data.x_train[idx].to(device), data.y_train[idx].to(device)
        optimiser.zero_grad(set_to_none=True)
        with autocast_context(device, amp_dtype):
            logits = model(xb)
            loss = loss_fn(logits, yb)
            if data.soft is not None:  # Hinton's soft targets: α·T²·KL(teacher_T ‖ student_T) + (1 − α)·CE
                kd = nn.functional.kl_div(torch.log_softmax(logits.float() / temperature, 1),
                                          data.soft[idx].to(device), reduction="batchmean")
                loss = alpha * temperature**2 * kd + (1 - alpha) * loss
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        with torch.no_grad():  # a pruned network stays pruned
            for weight, zero in pruned:
                weight.masked_fill_(zero, 0.0)
        running += float(loss.detach()) * len(idx)
    return running / len(data.x_train)


def train_network(network: str, dataset: Dataset, epochs: int, *, batch_size: int = 32, lr: float = 1e-3,
                  seed: int = SPLIT_SEED, amp: bool = False, device: str = "cpu", progress: bool = True,
                  train_limit: int | None = None, teacher: nn.Module | None = None, temperature: float = 4.0,
                  alpha: float = 0.9, start: nn.Module | None = None) -> TrainingResult:
    """Train `network` on `dataset` with seed 000's protocol; `train_limit` caps the training images.

    With a `teacher`, the student learns from its temperature-softened outputs as well (Hinton's soft
    targets, response-based offline distillation, seed 003): loss = α·T²·KL(teacher_T ‖ student_T) +
    (1 − α)·cross-entropy on the labels; the teacher's logits are computed once, in eval mode.
    The run is seeded by `seed` alone, inside a fork of torch's global generator: the caller's random
    state is left as it was. With `start` (a `network`), training continues from a copy of its weights,
    and the weights of its convolutions and linear layers that are exactly 0 stay 0 (a pruned network is
    fine-tuned as pruned).
    """
    _check_training(epochs, batch_size, lr, train_limit, teacher, temperature, alpha)
    cuda = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)  # dropout draws from the global generator: seeded here, restored on exit
        return _train(network, dataset, epochs, batch_size, lr, seed, amp, device, progress, train_limit, teacher,
                      temperature, alpha, start)


def _train(network: str, dataset: Dataset, epochs: int, batch_size: int, lr: float, seed: int, amp: bool, device: str,
           progress: bool, train_limit: int | None, teacher: nn.Module | None, temperature: float,
           alpha: float, start: nn.Module | None) -> TrainingResult:
    model = (copy.deepcopy(start).float() if start is not None else build_network(network, seed=seed)).to(device)
    pruned = _pruned_masks(model) if start is not None else []
    data = _training_data(network, dataset, seed, train_limit, teacher, temperature, device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, patience=5, factor=0.1)
    amp_dtype = torch.float16 if amp and device.startswith("cuda") else (torch.bfloat16 if amp else None)
    scaler = torch.amp.GradScaler(enabled=amp_dtype == torch.float16)
    generator = torch.Generator().manual_seed(seed)
    result = TrainingResult(network, model)
    best_state: dict[str, torch.Tensor] | None = None
    started = time.perf_counter()
    with channels_last(model):  # trains 1.6× faster; the returned model has the default layout
        for epoch in range(1, epochs + 1):
            order = torch.randperm(len(data.x_train), generator=generator)
            train_loss = _train_epoch(model, data, order, batch_size, optimiser, scaler, amp_dtype, device,
                                      temperature, alpha, f"{network} epoch {epoch}/{epochs}", progress, pruned)
            val_logits = predict_logits(model, data.x_val, device=device)
            val_loss = float(nn.functional.cross_entropy(torch.from_numpy(val_logits), torch.from_numpy(data.y_val)))
            val_acc = _accuracy(val_logits, data.y_val)
            scheduler.step(val_loss)
            result.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                                   "val_accuracy": val_acc, "lr": optimiser.param_groups[0]["lr"]})
            log.info("%s epoch %d: train loss %.4f val loss %.4f val acc %.4f", network, epoch, train_loss, val_loss,
                     val_acc)
            if best_state is None or val_acc > result.validation_accuracy:
                result.validation_accuracy, result.best_epoch = val_acc, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(best_state)
        result.seconds = time.perf_counter() - started
        test_logits = predict_logits(model, to_network_input(dataset.test_images, network_spec(network).input_shape),
                                     device=device)
        result.test_accuracy = _accuracy(test_logits, dataset.test_labels)
    return result


def save_checkpoint(model: nn.Module, path: Path, **details: Any) -> dict[str, Any]:
    """Save an fp32 state dict as safetensors beside `<path>.json` holding its provenance."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(state, str(tmp))
    tmp.replace(path)
    record = provenance(weights_sha256=hashlib.sha256(path.read_bytes()).hexdigest(), **details)
    atomic_write_json(path.with_suffix(".json"), record)
    return record


def save_training(result: TrainingResult, path: Path, dataset: Dataset, **settings: Any) -> dict[str, Any]:
    """`save_checkpoint` of a finished training with what it was trained on and how it went."""
    return save_checkpoint(result.model, path, network=result.network, dataset=dataset.name,
                           data_checksum=dataset.checksum, best_epoch=result.best_epoch,
                           training_seconds=round(result.seconds, 1), validation_accuracy=result.validation_accuracy,
                           test_accuracy=result.test_accuracy, history=result.history, **settings)


def load_checkpoint(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """A network rebuilt from a checkpoint, after checking the weights' sha256 against its provenance."""
    from safetensors.torch import load_file

    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise FileNotFoundError(f"checkpoint {path} or its provenance {meta_path} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"checkpoint provenance {meta_path} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("network"), str):
        raise ValueError(f"checkpoint provenance {meta_path} does not name its network")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != meta.get("weights_sha256"):
        raise ValueError(f"checkpoint {path}: sha256 {digest} differs from its provenance's "
                         f"{meta.get('weights_sha256')}; the file is corrupt or was replaced")
    model = build_network(meta["network"])
    try:
        model.load_state_dict(load_file(str(path)))
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {path} does not hold the weights of a {meta['network']}: "
                         f"{str(exc).splitlines()[0]}") from None
    return model.eval(), meta


def available_checkpoints(folder: Path, dataset: str = "fashion-mnist") -> dict[str, Path]:
    """Trained checkpoints `<network>-<dataset>.safetensors` in a folder, by network name."""
    from greenbench.nn.models import NETWORKS

    found = {}
    for network in NETWORKS:
        path = Path(folder) / f"{network}-{dataset}.safetensors"
        if path.is_file() and path.with_suffix(".json").is_file():
            found[network] = path
    return found
