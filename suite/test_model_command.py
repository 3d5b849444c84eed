"""`greenbench model PATH`: the thesis's claims on a user's own model, in every mode it offers, and the
errors it gives for what it cannot study."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from greenbench import cli
from greenbench.nn.data import to_network_input
from greenbench.nn.modelstudy import ModelFileError, load_model_data, load_user_model
from greenbench.nn.onnx_eval import export_onnx

N_IMAGES = 300


@pytest.fixture(scope="module")
def files(tmp_path_factory, trained_networks):
    """LeNet-5 (the committed fixture) as ONNX, safetensors and a state dict, with labelled and unlabelled data."""
    folder = tmp_path_factory.mktemp("model")
    model, _ = trained_networks.checkpoint("lenet5")
    (folder / "lenet5.onnx").write_bytes(export_onnx(model, (3, 32, 32)).SerializeToString())
    (folder / "lenet5.safetensors").write_bytes(trained_networks.paths["lenet5"].read_bytes())
    torch.save(model.state_dict(), folder / "lenet5.pt")
    x = to_network_input(trained_networks.dataset.test_images[:N_IMAGES]).numpy()
    np.savez(folder / "labelled.npz", inputs=x, labels=trained_networks.dataset.test_labels[:N_IMAGES])
    np.savez(folder / "inputs.npz", inputs=x)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3))
    torch.manual_seed(0)
    (folder / "denoiser.onnx").write_bytes(export_onnx(conv.eval(), (3, 16, 16)).SerializeToString())
    np.savez(folder / "patches.npz", inputs=np.random.default_rng(0).normal(size=(64, 3, 16, 16)).astype(np.float32))
    return folder


def _run(files, capsys, *argv):
    report = files / ("report-" + "-".join(a.replace("/", "_").replace(".", "_") for a in argv))
    assert cli.main(["model", *argv, "--report-dir", str(report)]) == 0
    study = json.loads((report / "model.json").read_text())["study"]
    return study, capsys.readouterr().out, report


def test_onnx_with_labelled_data_reports_accuracy_loss_and_real_sizes(files, capsys):
    study, out, report = _run(files, capsys, str(files / "lenet5.onnx"), "--data", str(files / "labelled.npz"))
    budget = study["budget"]
    assert "accuracy loss (pp) on the given labels" in budget["fidelity"] and budget["images"] == N_IMAGES
    best = budget["best_per_family"]["deadzone δ=0.7"]
    assert best["loss_top1_pp"] <= 0.8 and best["real_cr"] >= best["cr"]  # the container's coder beats 32/H
    assert study["fit"]["laplace_rank_sse"] in range(1, 9) and "laplacian-weights: Laplace ranks" in out
    assert (report / "rate_accuracy.png").is_file() and (report / "rate_distortion.png").is_file()


def test_onnx_with_inputs_only_uses_agreement_with_its_own_predictions(files, capsys):
    study, out, _ = _run(files, capsys, str(files / "lenet5.onnx"), "--data", str(files / "inputs.npz"),
                         "--quantizers", "deadzone δ=0.7,midtread")
    assert "agreement" in study["budget"]["fidelity"] and study["budget"]["original_top1"] == 1.0
    assert set(study["budget"]["best_per_family"]) == {"deadzone δ=0.7", "midtread"}
    assert "fidelity: top-1 agreement" in out


def test_a_model_that_is_not_a_classifier_is_judged_by_output_snr(files, capsys):
    study, out, report = _run(files, capsys, str(files / "denoiser.onnx"), "--data", str(files / "patches.npz"),
                              "--snr-db", "25", "--quantizers", "midtread")
    best = study["budget"]["best_per_family"]["midtread"]
    assert "output SNR" in study["budget"]["fidelity"] and best["snr_db"] >= 25
    assert (report / "rate_fidelity.png").is_file()


@pytest.mark.parametrize("name, kind", [("lenet5.onnx", "onnx"), ("lenet5.safetensors", "safetensors"),
                                        ("lenet5.pt", "state dict")])
def test_without_data_the_claims_that_need_no_graph(files, capsys, name, kind):
    study, out, _ = _run(files, capsys, str(files / name), "--quantizers", "deadzone δ=0.7,mu-law")
    assert study["kind"] == kind and study["weights"] > 60_000 and "budget" not in study
    coded = study["coded_near_8x"]["deadzone δ=0.7"]
    assert coded["cr"] >= 8 and coded["real_cr"] == pytest.approx(coded["cr"], rel=0.02)
    assert {r["family"] for r in study["rate_distortion"]} == {"deadzone δ=0.7", "mu-law"}


def test_the_three_files_of_one_model_agree(files):
    flats = [load_user_model(files / n).flat for n in ("lenet5.onnx", "lenet5.safetensors", "lenet5.pt")]
    assert flats[1].size == flats[2].size and np.array_equal(np.sort(flats[1]), np.sort(flats[2]))
    assert flats[0].size <= flats[1].size  # the ONNX graph folds BatchNorm where the network has it


def _text(path):
    path.write_text("not a model")
    return path


def _int8_onnx(path):
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 3), np.int8), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 3])], [w])
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return path


@pytest.mark.parametrize("make, data, fragment", [
    (lambda f: _text(f / "notes.onnx"), None, "corrupt or invalid ONNX"),
    (lambda f: _text(f / "notes.txt"), None, "not a model greenbench reads"),
    (lambda f: f / "missing.onnx", None, "no such file"),
    (lambda f: _int8_onnx(f / "int8.onnx"), None, "holds no float weights"),
    (lambda f: f / "lenet5.onnx", lambda f: np.savez(f / "d1.npz", images=np.ones((2, 3, 32, 32))) or f / "d1.npz",
     "no 'inputs' array"),
    (lambda f: f / "lenet5.onnx", lambda f: np.savez(f / "d2.npz", inputs=np.ones((2, 1, 28, 28), np.float32))
     or f / "d2.npz", "the model takes (3, 32, 32)"),
    (lambda f: f / "lenet5.onnx", lambda f: np.savez(f / "d3.npz", inputs=np.ones((2, 3, 32, 32), np.float32),
                                                      labels=np.array([0, 10])) or f / "d3.npz",
     "the model has 10 outputs"),
    (lambda f: f / "lenet5.onnx", lambda f: np.savez(f / "d4.npz", inputs=np.full((2, 3, 32, 32), np.nan, np.float32))
     or f / "d4.npz", "finite numbers"),
    (lambda f: f / "lenet5.safetensors", lambda f: f / "inputs.npz", "weights-only file has no graph"),
    (lambda f: _bytes(f / "empty.pt", b""), None, "is empty (0 bytes)"),
    (lambda f: _bytes(f / "junk.pt", bytes(range(256)) * 4), None, "not a PyTorch state dict"),
    (lambda f: f / "lenet5.onnx", lambda f: _bytes(f / "junk.npz", b"PK\x03\x04 junk"), "not a readable .npz"),
    (lambda f: f / "lenet5.onnx", lambda f: np.save(f / "x.npy", np.ones((2, 3, 32, 32))) or f / "x.npy",
     "is a single array (.npy)"),
], ids=["text-as-onnx", "unknown-suffix", "missing", "int8-weights", "no-inputs", "wrong-shape", "labels-range",
        "nan-inputs", "weights-only-with-data", "empty-pt", "junk-pt", "junk-npz", "npy-data"])
def test_what_cannot_be_studied_is_a_clear_error(files, capsys, make, data, fragment):
    path = make(files)
    argv = ["model", str(path)] + (["--data", str(data(files))] if data else [])
    assert cli.main(argv) == 2
    assert fragment in capsys.readouterr().err


def _bytes(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("extra, fragment", [
    (["--report-dir", "{file}"], "is a file, not a folder"),
    (["--budget", "nan"], "--budget: must be a number in (0, 100], got 'nan'"),
    (["--budget", "-1"], "--budget: must be a number in (0, 100]"),
    (["--snr-db", "inf"], "--snr-db: must be a number"),
], ids=["report-dir-file", "budget-nan", "budget-negative", "snr-inf"])
def test_bad_options_are_refused_before_the_study_runs(files, capsys, extra, fragment):
    taken = files / "taken"
    taken.write_text("")
    argv = ["model", str(files / "lenet5.safetensors"), *[a.format(file=taken) for a in extra]]
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse's own refusal
        status = exit_.code
    assert status == 2
    assert fragment in capsys.readouterr().err


def test_unknown_quantizer_family_is_refused(files, capsys):
    assert cli.main(["model", str(files / "lenet5.safetensors"), "--quantizers", "deadzone δ=0.9"]) == 2
    assert "unknown quantizer families" in capsys.readouterr().err


def test_loaders_name_the_file():
    with pytest.raises(ModelFileError, match="no such file"):
        load_user_model("/nonexistent/model.onnx")
    with pytest.raises(ModelFileError, match="weights-only"):
        load_model_data("x.npz", type("M", (), {"proto": None, "path": "w.safetensors"})())


def test_pytest_model_option_adds_a_users_model_to_the_network_claims(files, tmp_path):
    """`pytest --model PATH::DATA` runs laplacian-weights, deadzone-optimal and compression-8x on it."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    claims = tmp_path / "claims.json"
    weights_only = tmp_path / "lenet5-weights.safetensors"  # case ids are file stems: one per model
    weights_only.write_bytes((files / "lenet5.safetensors").read_bytes())
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "no:xdist",
                           "suite/test_claim_laplacian_weights.py", "suite/test_claim_compression_8x.py",
                           "suite/test_claim_deadzone_optimal.py", "-k", "model:",
                           f"--model={files / 'lenet5.onnx'}::{files / 'labelled.npz'}",
                           f"--model={weights_only}", f"--claims-json={claims}",
                           f"--baseline-dir={tmp_path / 'baselines'}"],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {(r["claim"], r["case"]): r for r in json.loads(claims.read_text())["rows"]}
    labelled = rows[("compression-8x", "test_model_quantized_within_budget_in_the_theses_cr_range[model:lenet5]")]
    assert labelled["verdict"] == "reproduced"
    assert rows[("laplacian-weights", "test_laplace_ranks_first_or_second_for_trained_weights[model:lenet5]")][
        "verdict"] == "reproduced"
    assert labelled["record"]["inputs"]["data_sha256"] and labelled["record"]["inputs"]["model_sha256"]
    assert rows[("laplacian-weights", "test_laplace_ranks_first_or_second_for_trained_weights[model:lenet5-weights]")][
        "verdict"] == "reproduced"
    skipped = rows[("deadzone-optimal", "test_deadzone_family_gives_lowest_rate_on_network[model:lenet5-weights]")]
    assert skipped["verdict"] == "not run" and "weights-only" in skipped["reason"]
