"""Pruning (seed 003, "Aceleração universal vs específica"): unstructured magnitude masks against
structured removal of whole filters and neurons.

- `magnitude_prune`: the smallest-magnitude fraction of all conv and dense weights set to exactly 0
  (a mask); the network keeps its shape, so it runs no faster without sparse hardware or kernels.
- `structured_prune`: in every prunable layer the fraction of output filters (conv) or neurons
  (dense) with the smallest L1 or L2 norm removed, and the network rebuilt physically smaller —
  the layer's weights, bias and BatchNorm lose those channels and every layer that reads them
  loses the matching inputs — so it runs faster anywhere. The output layer is never pruned.
- `inference_time_ratio`: a pruned network's inference time over the original's, each pass timed
  beside one of the original's.

Which layers read which channels is declared per architecture (`channel_groups`): a producer, its
BatchNorm, and its consumers with the offset of its channels in their input (a concatenation
shifts it) and the input columns each channel spans (a dense layer after a flatten reads a
channel's whole feature map).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from greenbench.core.validation import check_scalar
from greenbench.nn.models import GoogLeNet, Inception, LeNet5, StudentCNN

PRUNABLE = (nn.Conv2d, nn.Linear)
NORMS = ("l1", "l2")


def _check_fraction(value: float, what: str) -> float:
    return check_scalar(value, what, float, low=0.0, high=1.0, include_high=False)


def weight_count(model: nn.Module) -> int:
    """Conv and dense weights (biases and BatchNorm excluded): what sparsity is a fraction of."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, PRUNABLE))


def magnitude_prune(model: nn.Module, sparsity: float) -> nn.Module:
    """A copy with the `sparsity` fraction of smallest-|w| conv and dense weights set to 0 (one global rank)."""
    sparsity = _check_fraction(sparsity, "sparsity")
    pruned = copy.deepcopy(model)
    layers = [m for m in pruned.modules() if isinstance(m, PRUNABLE)]
    flat = torch.cat([m.weight.detach().abs().reshape(-1) for m in layers])
    k = int(round(sparsity * flat.numel()))
    if k:
        drop = torch.zeros(flat.numel(), dtype=torch.bool)
        drop[torch.argsort(flat, stable=True)[:k]] = True
        start = 0
        with torch.no_grad():
            for m in layers:
                n = m.weight.numel()
                m.weight[drop[start:start + n].view_as(m.weight)] = 0.0
                start += n
    return pruned


@dataclass(frozen=True)
class Consumer:
    path: str  # the module reading the channels
    offset: int  # where the producer's channels start in its input (in channels)
    unit: int = 1  # input columns per channel (a dense layer after a flatten reads a whole feature map)


@dataclass(frozen=True)
class ChannelGroup:
    producer: str
    consumers: tuple[Consumer, ...]
    norm: str | None = None  # the BatchNorm after the producer, if any


def _conv_bn(prefix: str) -> tuple[str, str]:
    """The conv and BatchNorm of a models.conv_bn_relu block."""
    return f"{prefix}.0", f"{prefix}.1"


def _inception_groups(prefix: str, module: Inception, readers: list[tuple[str, int]]) -> list[ChannelGroup]:
    """An Inception block's inner groups and its four outputs, which `readers` (path, unit) read."""
    groups = []
    for branch in ("branch3", "branch5"):
        conv, bn = _conv_bn(f"{prefix}.{branch}.0")
        groups.append(ChannelGroup(conv, (Consumer(_conv_bn(f"{prefix}.{branch}.1")[0], 0),), bn))
    offset = 0
    for branch, out in (("branch1", ""), ("branch3", ".1"), ("branch5", ".1"), ("branch_pool", ".1")):
        conv, bn = _conv_bn(f"{prefix}.{branch}{out}" if out else f"{prefix}.{branch}")
        channels = module.get_submodule(conv.removeprefix(prefix + ".")).out_channels
        groups.append(ChannelGroup(conv, tuple(Consumer(path, offset, unit) for path, unit in readers), bn))
        offset += channels
    return groups


def _inception_inputs(prefix: str) -> list[str]:
    """The four convolutions that read an Inception block's input."""
    return [f"{prefix}.branch1.0", f"{prefix}.branch3.0.0", f"{prefix}.branch5.0.0", f"{prefix}.branch_pool.1.0"]


def channel_groups(model: nn.Module) -> list[ChannelGroup]:
    """Every prunable producer of the suite's architectures and who reads its channels."""
    if isinstance(model, LeNet5):
        side = model.classifier[1].in_features // model.features[3].out_channels
        return [ChannelGroup("features.0", (Consumer("features.3", 0),)),
                ChannelGroup("features.3", (Consumer("classifier.1", 0, side),)),
                ChannelGroup("classifier.1", (Consumer("classifier.3", 0),)),
                ChannelGroup("classifier.3", (Consumer("classifier.5", 0),))]
    if isinstance(model, StudentCNN):
        return [ChannelGroup("features.0", (Consumer("features.3", 0),)),
                ChannelGroup("features.3", (Consumer("features.6", 0),)),
                ChannelGroup("features.6", (Consumer("classifier.1", 0),))]
    if isinstance(model, GoogLeNet):
        stem_conv, stem_bn = _conv_bn("features.0")
        groups = [ChannelGroup(stem_conv, tuple(Consumer(p, 0) for p in _inception_inputs("features.2")), stem_bn)]
        groups += _inception_groups("features.2", model.features[2],
                                    [(p, 1) for p in _inception_inputs("features.3")])
        groups += _inception_groups("features.3", model.features[3], [("classifier.2", 1)])
        return groups
    raise ValueError(f"structured pruning knows LeNet5, GoogLeNet and StudentCNN, not {type(model).__name__}")


def _replace(root: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, new)


def _filter_norms(layer: nn.Module, norm: str) -> torch.Tensor:
    w = layer.weight.detach().reshape(layer.weight.shape[0], -1)
    return w.abs().sum(1) if norm == "l1" else w.pow(2).sum(1).sqrt()


def _shrunk(layer: nn.Module, keep_out: torch.Tensor | None, keep_in: torch.Tensor | None) -> nn.Module:
    """A smaller copy of a conv or dense layer keeping the given output and input indices."""
    w = layer.weight.detach()
    if keep_out is not None:
        w = w[keep_out]
    if keep_in is not None:
        w = w[:, keep_in]
    bias = layer.bias.detach()[keep_out] if (layer.bias is not None and keep_out is not None) else layer.bias
    if isinstance(layer, nn.Conv2d):
        new = nn.Conv2d(w.shape[1], w.shape[0], layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                        bias=layer.bias is not None)
    else:
        new = nn.Linear(w.shape[1], w.shape[0], bias=layer.bias is not None)
    with torch.no_grad():
        new.weight.copy_(w)
        if layer.bias is not None:
            new.bias.copy_(bias.detach())
    return new


def _shrunk_norm(bn: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(int(keep.numel()), eps=bn.eps, momentum=bn.momentum)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new, name).copy_(getattr(bn, name).detach()[keep])
        new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new


def structured_prune(model: nn.Module, fraction: float, norm: str = "l1") -> nn.Module:
    """A physically smaller copy: in every prunable layer the `fraction` of filters or neurons with the
    smallest `norm` ("l1" or "l2") removed, with every input that read them."""
    fraction = _check_fraction(fraction, "fraction")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    pruned = copy.deepcopy(model).eval()
    groups = channel_groups(pruned)
    keep_out: dict[str, torch.Tensor] = {}
    keep_in: dict[str, torch.Tensor] = {}
    for group in groups:  # decided on the unpruned weights, all at once
        layer = pruned.get_submodule(group.producer)
        channels = layer.weight.shape[0]
        kept = max(1, channels - int(round(fraction * channels)))
        order = torch.argsort(_filter_norms(layer, norm), descending=True, stable=True)
        keep = torch.zeros(channels, dtype=torch.bool)
        keep[order[:kept]] = True
        keep_out[group.producer] = keep
        for consumer in group.consumers:
            reader = pruned.get_submodule(consumer.path)
            mask = keep_in.setdefault(consumer.path, torch.ones(reader.weight.shape[1], dtype=torch.bool))
            start = consumer.offset * consumer.unit
            mask[start:start + channels * consumer.unit] = keep.repeat_interleave(consumer.unit)
    norms = {g.producer: g.norm for g in groups}
    for path in sorted(set(keep_out) | set(keep_in)):
        out = keep_out.get(path)
        kept_in = torch.flatten(keep_in[path].nonzero()) if path in keep_in else None
        _replace(pruned, path, _shrunk(pruned.get_submodule(path),
                                       None if out is None else torch.flatten(out.nonzero()), kept_in))
        if norms.get(path):
            _replace(pruned, norms[path], _shrunk_norm(pruned.get_submodule(norms[path]), torch.flatten(out.nonzero())))
    return pruned


def weight_sparsity(original: nn.Module, pruned: nn.Module) -> float:
    """The fraction of the original's conv and dense weights that the pruned network no longer has (or holds at 0)."""
    kept = sum(int((m.weight != 0).sum()) for m in pruned.modules() if isinstance(m, PRUNABLE))
    return 1.0 - kept / weight_count(original)


def _pass_seconds(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> float:
    """CPU seconds of one pass: what the work costs, which another process on the cores cannot add to (wall time
    on a shared runner is the work plus someone else's)."""
    started = time.process_time()
    for start in range(0, len(inputs), batch_size):
        model(inputs[start:start + batch_size])
    return time.process_time() - started


def inference_time_ratio(model: nn.Module, reference: nn.Module, inputs: torch.Tensor, pairs: int = 3,
                         batch_size: int = 256) -> float:
    """Median over `pairs` of the CPU time of one pass of `model` over `inputs` divided by that of `reference`'s pass
    just before it (after one warm-up pass each), single-threaded as the caller set. CPU time, and adjacent passes,
    keep the ratio what the two networks cost, whatever else runs on the machine."""
    check_scalar(pairs, "pairs", int, low=1)
    model, reference = model.eval(), reference.eval()
    ratios = []
    with torch.no_grad():
        _pass_seconds(reference, inputs, batch_size)
        _pass_seconds(model, inputs, batch_size)
        for _ in range(pairs):
            before = _pass_seconds(reference, inputs, batch_size)
            ratios.append(_pass_seconds(model, inputs, batch_size) / before)
    return float(np.median(ratios))
