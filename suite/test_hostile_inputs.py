"""Hostile and careless input, one row per case: what is passed, the error type it must raise and a
fragment of the message, which must name the problem. No case may return a plausible-looking figure,
hang, or fail with an unrelated exception. (Overflow and fuzzing cases whose answer is a value, not an
error, live beside their modules: test_quantizers, test_rate, test_onnx_codec.)"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import scipy.stats

from greenbench import cli
from greenbench.analysis import distributions as dist
from greenbench.analysis import metrics, statistics
from greenbench.analysis import ratedistortion as rd
from greenbench.coding.container import decode_container
from greenbench.coding.context import decode_tensors
from greenbench.coding.entropy import (
    CorruptStreamError,
    compression_ratio,
    decode_indices,
    encode_indices,
    entropy_bits,
    entropy_from_counts,
    space_reduction,
)
from greenbench.coding.weights import OnnxCodecError, load_onnx
from greenbench.energy import carbon
from greenbench.energy.codecarbon import CodeCarbonMeter
from greenbench.energy.estimate import CpuTimeEstimateMeter
from greenbench.energy.gputier import gpu_tier_settings
from greenbench.energy.meter import idle_power, measure, min_window_for, warm_up
from greenbench.energy.nvml import NvmlMeter
from greenbench.energy.simulated import SimulatedNvml
from greenbench.harness.baselines import BaselineError, BaselineStore
from greenbench.harness.claims import ClaimRecord, Metric
from greenbench.nn import budget as compression
from greenbench.nn import data, models, training
from greenbench.quantization.affine import Affine
from greenbench.quantization.base import make_quantizer
from greenbench.quantization.codebook import Codebook
from greenbench.quantization.tabled import Minifloat, MuLaw
from greenbench.quantization.uniform import Deadzone, Midrise, Midtread

NAN, INF = float("nan"), float("inf")
LAPLACE = rd.EmpiricalSource.laplace_quantiles(1000)


def _nvml():
    return NvmlMeter(nvml=SimulatedNvml(), synchronize=lambda: None)


def _open_twice():
    meter = _nvml()
    meter.begin()
    meter.begin()


def _crafted_stream(lengths, payload=b"\x00" * 8, lag=0):
    """A context-coded stream with a valid checksum whose header claims these tensor lengths."""
    from greenbench.coding.context import MAGIC, VERSION
    from greenbench.coding.entropy import varints, with_checksum

    sizes = b"".join(varints(np.array([n, lag])) for n in lengths)  # format 2: length and lag, varints
    return with_checksum(MAGIC + bytes([VERSION]) + struct.pack("<I", len(lengths)) + sizes + payload)


def _crafted_container(lengths):
    from greenbench.coding.container import CONTAINER_VERSION, MAGIC
    from greenbench.coding.entropy import with_checksum

    header = json.dumps({"quantizer": "midtread", "params": {"step": 0.1}, "reconstruction_sha256": "0" * 64,
                         "tensors": [{"name": "W", "shape": [2]}]}).encode()
    graph = _one_weight_graph().SerializeToString()
    return with_checksum(MAGIC + bytes([CONTAINER_VERSION]) + struct.pack("<I", len(header)) + header
                         + struct.pack("<Q", len(graph)) + graph + _crafted_stream(lengths))


def _one_weight_graph():
    from onnx import TensorProto, helper

    weight = helper.make_tensor("W", TensorProto.FLOAT, [2], [0.0, 0.0])
    weight.ClearField("float_data")  # emptied, as the container stores its graph
    node = helper.make_node("Identity", ["W"], ["y"])
    return helper.make_model(helper.make_graph([node], "g", [], [helper.make_tensor_value_info("y", 1, [2])],
                                              [weight]))


CASES = [
    ("float16 output that cannot hold the value", lambda: Midtread(levels=1024, xmax=1e5).dequantize(
        np.array([500]), dtype=np.float16), ValueError, "beyond float16's largest finite 65504"),
    ("metric of a bool", lambda: Metric(True), ValueError, "a metric's value must be a number"),
    ("metric unit not text", lambda: Metric(1.0, unit=5), ValueError, "unit is a str"),
    ("split leaving no validation images", lambda: data.train_validation_split(3, train_fraction=0.9), ValueError,
     "leaves the validation split empty"),
    # crafted files with valid checksums (hostile, not damaged): refused before anything is allocated or decoded
    ("stream lengths summing to 2^64", lambda: decode_tensors(_crafted_stream([2**62] * 4)), CorruptStreamError,
     "more symbols than its bytes can hold"),
    ("stream lengths 2^63 − 1 twice", lambda: decode_tensors(_crafted_stream([2**63 - 1, 2**63 - 1, 2])),
     CorruptStreamError, "more symbols than its bytes can hold"),
    ("stream naming a lag it cannot have", lambda: decode_tensors(_crafted_stream([4], lag=10**6)),
     CorruptStreamError, "a lag not in"),
    ("stream claiming 2^31 + 1 indices", lambda: decode_tensors(_crafted_stream([2**31 + 1], b"\x00" * 400_000)),
     CorruptStreamError, "over the 2,147,483,648 this decoder allocates"),
    ("container of a crafted stream", lambda: decode_container(_crafted_container([2**62] * 4)), OnnxCodecError,
     "weights are corrupt"),
    # quantizers: parameters
    ("levels beyond int64", lambda: Midtread(levels=2**63), ValueError, "levels must lie in"),
    ("levels not an integer", lambda: Midtread(levels=16.0), ValueError, "levels must be an integer"),
    ("levels a bool", lambda: Midrise(levels=True), ValueError, "levels must be an integer"),
    ("step that overflows", lambda: Midtread(levels=4, xmax=1.7e308), ValueError, "step must be a finite"),
    ("step NaN", lambda: Midtread(step=NAN), ValueError, "step must be finite"),
    ("step zero", lambda: Deadzone(0.5, step=0.0), ValueError, "step must be >"),
    ("deadzone delta 1", lambda: Deadzone(1.0, levels=16), ValueError, "delta must lie in"),
    ("deadzone delta NaN", lambda: Deadzone(NAN, levels=16), ValueError, "delta must be finite"),
    ("mu-law mu inf", lambda: MuLaw(16, mu=INF), ValueError, "mu must be finite"),
    ("minifloat beyond float64", lambda: Minifloat(20, 3), ValueError, "beyond float64"),
    ("minifloat bias overflows", lambda: Minifloat(4, 3, bias=10**6), ValueError, "beyond float64"),
    ("minifloat among float64 subnormals", lambda: Minifloat(4, 3, bias=1025), ValueError,
     "beyond float64's normal range"),
    ("step whose reconstruction overflows", lambda: Midtread(step=1e308), ValueError, "overflows"),
    ("midrise step whose reconstruction overflows", lambda: Midrise(step=1e300), ValueError, "overflows"),
    ("affine calibrated at 2000 bits", lambda: Affine.calibrate(np.ones(4), 2000), ValueError, "bits must lie in"),
    ("minifloat bias a float", lambda: Minifloat(4, 3, bias=2.5), ValueError, "bias must be an integer"),
    ("minifloat 21 exponent bits", lambda: Minifloat(21, 3), ValueError, "exponent_bits must lie in"),
    ("affine 0 bits", lambda: Affine(0, -1.0, 1.0), ValueError, "bits must lie in"),
    ("affine alpha NaN", lambda: Affine(8, NAN, 1.0), ValueError, "alpha must be finite"),
    ("affine range without 0", lambda: Affine(8, 0.5, 1.0), ValueError, "must contain 0"),
    ("affine unknown calibration", lambda: Affine.calibrate(np.ones(4), 8, "median"), ValueError,
     "unknown calibration method"),
    ("codebook NaN point", lambda: Codebook([0.0], [NAN, 1.0]), ValueError, "must be finite"),
    ("codebook unsorted edges", lambda: Codebook([1.0, 0.0], [0.0, 0.5, 2.0]), ValueError, "must increase"),
    ("unknown quantizer", lambda: make_quantizer("nope"), ValueError, "unknown quantizer 'nope'"),
    ("bad quantizer parameter", lambda: make_quantizer("midtread", lvls=16), ValueError, "bad parameters"),
    # quantizers: input
    ("quantize NaN", lambda: Midtread(levels=16).quantize(np.array([1.0, NAN])), ValueError, "non-finite"),
    ("quantize inf (affine)", lambda: Affine(8, -1.0, 1.0).quantize(np.array([INF])), ValueError, "non-finite"),
    ("quantize inf (minifloat)", lambda: Minifloat(4, 3).quantize(np.array([-INF])), ValueError, "non-finite"),
    ("quantize empty", lambda: Deadzone(0.7, levels=16).quantize(np.array([], np.float32)), ValueError, "is empty"),
    ("quantize integers", lambda: Midtread(levels=16).quantize(np.arange(3)), ValueError, "must be float16"),
    ("quantize booleans", lambda: MuLaw(16).quantize(np.array([True])), ValueError, "must be float16"),
    ("quantize strings", lambda: Midtread(levels=16).quantize(np.array(["1.0"])), ValueError, "must be float16"),
    ("quantize complex", lambda: Midtread(levels=16).quantize(np.array([1j])), ValueError, "must be float16"),
    ("unbounded index beyond int64", lambda: Midtread(step=1e-300).quantize(np.array([1.0])), ValueError,
     "does not fit in int64"),
    ("unbounded index beyond int64 (negative)", lambda: Deadzone(0.3, step=0.5).quantize(np.array([0.0, -1e300])),
     ValueError, "value np.float64\\(-1e\\+300\\)"),
    # quantizers: indices
    ("dequantize uint64 beyond int64", lambda: Midtread(step=0.1).dequantize(np.array([2**64 - 1], np.uint64)),
     ValueError, "does not fit in int64"),
    ("dequantize index out of range", lambda: Midtread(levels=16).dequantize(np.array([8])), ValueError,
     "not valid for"),
    ("mu-law index beyond its levels", lambda: MuLaw(16).dequantize(np.array([100])), ValueError, "not valid for"),
    ("dequantize midrise zero", lambda: Midrise(levels=16).dequantize(np.array([0])), ValueError, "not valid for"),
    ("dequantize float indices", lambda: Affine(8, -1.0, 1.0).dequantize(np.array([1.5])), ValueError,
     "indices must be integers"),
    ("dequantize to int32", lambda: Midtread(levels=16).dequantize(np.array([1]), dtype=np.int32), ValueError,
     "gives float16, float32 or float64"),
    ("dequantize to int8 (affine)", lambda: Affine(8, -1.0, 1.0).dequantize(np.array([1]), dtype="int8"),
     ValueError, "not int8"),
    ("dequantize to int (minifloat)", lambda: Minifloat(4, 3).dequantize(np.array([1]), dtype=int), ValueError,
     "not int64"),
    ("dequantize to int (mu-law)", lambda: MuLaw(16).dequantize(np.array([1]), dtype=np.int16), ValueError,
     "not int16"),
    ("dequantize to a bogus dtype", lambda: Codebook([0.0], [-1.0, 1.0]).dequantize(np.array([0]), dtype="banana"),
     ValueError, "not 'banana'"),
    # rate and coding
    ("entropy of nothing", lambda: entropy_bits(np.array([], np.int64)), ValueError, "indices are empty"),
    ("entropy of floats", lambda: entropy_bits(np.array([0.5])), ValueError, "must be integers"),
    ("negative counts", lambda: entropy_from_counts(np.array([-1, 3])), ValueError, "finite and ≥ 0"),
    ("NaN counts", lambda: entropy_from_counts(np.array([NAN, 3.0])), ValueError, "finite and ≥ 0"),
    ("CR of NaN bits", lambda: compression_ratio(NAN), ValueError, "entropy \\(bits\\) must be"),
    ("CR of negative bits", lambda: compression_ratio(-1.0), ValueError, "entropy \\(bits\\) must be"),
    ("CR of 0-bit originals", lambda: compression_ratio(2.0, original_bits=0), ValueError, "original_bits"),
    ("RE of inf bits", lambda: space_reduction(INF), ValueError, "entropy \\(bits\\) must be"),
    ("code uint64 beyond int64", lambda: encode_indices(np.array([2**63], np.uint64)), ValueError,
     "does not fit in int64"),
    ("decode text", lambda: decode_indices("GBRC"), TypeError, "is bytes"),
    ("decode nothing", lambda: decode_indices(b""), CorruptStreamError, "too short"),
    ("decode another format", lambda: decode_indices(b"GBRC\x09" + bytes(30)), CorruptStreamError, "format 9"),
    ("decode a forged header", lambda: decode_indices(_forged_stream()), CorruptStreamError, "header"),
    ("container of junk", lambda: decode_container(b"\x00" * 64), OnnxCodecError, "not a greenbench model"),
    ("container as text", lambda: decode_container("GBNNC"), TypeError, "is bytes"),
    ("ONNX model of junk", lambda: load_onnx(b"junk"), OnnxCodecError, "corrupt or invalid ONNX"),
    # statistics
    ("McNemar on integers", lambda: statistics.mcnemar([1, 0], [0, 1]), ValueError, "must be booleans"),
    ("McNemar on floats", lambda: statistics.mcnemar(np.array([1.0]), np.array([True])), ValueError,
     "must be booleans"),
    ("McNemar unpaired", lambda: statistics.mcnemar(np.array([True]), np.array([True, False])), ValueError,
     "equal length"),
    ("TOST margin 2", lambda: statistics.accuracy_equivalence(np.array([True]), np.array([True]), 2.0), ValueError,
     "margin is a proportion"),
    ("TOST alpha 0", lambda: statistics.accuracy_equivalence(np.array([True]), np.array([True]), 0.01, alpha=0.0),
     ValueError, "alpha must lie"),
    ("bootstrap confidence 1.5", lambda: statistics.relative_reduction([1, 2], [1, 2], confidence=1.5), ValueError,
     "confidence must lie"),
    ("bootstrap with NaN runs", lambda: statistics.relative_reduction([1, NAN], [1, 2]), ValueError, "NaN or inf"),
    ("bootstrap resamples 3", lambda: statistics.relative_reduction([1, 2], [1, 2], resamples=3), ValueError,
     "resamples must be"),
    ("CV of one run", lambda: statistics.coefficient_of_variation([1.0]), ValueError, "at least 2 values"),
    ("CV of a negative mean", lambda: statistics.coefficient_of_variation([-1.0, -2.0]), ValueError,
     "positive mean"),
    ("pooled test of no networks", lambda: statistics.paper_analysis({}, {}), ValueError, "same networks"),
    ("pooled test of other networks", lambda: statistics.paper_analysis({"a": [1, 2]}, {"b": [1, 2]}), ValueError,
     "same networks"),
    # energy
    ("window NaN seconds", lambda: measure(CpuTimeEstimateMeter(), lambda: None, NAN), ValueError, "min_window_s"),
    ("window inf seconds (hang)", lambda: measure(_nvml(), lambda: None, INF), ValueError, "min_window_s"),
    ("idle −1 s", lambda: idle_power(_nvml(), -1.0), ValueError, "idle seconds"),
    ("idle NaN s", lambda: idle_power(CpuTimeEstimateMeter(), NAN), ValueError, "idle seconds"),
    ("second begin", _open_twice, RuntimeError, "begin\\(\\) called twice"),
    ("NVML poll 0 s", lambda: NvmlMeter(nvml=SimulatedNvml(), poll_interval_s=0.0), ValueError, "poll_interval_s"),
    ("TDP −5 W", lambda: CpuTimeEstimateMeter(tdp_w=-5), ValueError, "tdp_w"),
    ("CodeCarbon every 0 s", lambda: CodeCarbonMeter(measure_power_secs=0), ValueError, "measure_power_secs"),
    ("window for a NaN period", lambda: min_window_for(NAN), ValueError, "update period"),
    ("warm-up tolerance 0", lambda: warm_up(_nvml(), lambda: None, tolerance=0.0), ValueError, "tolerance"),
    ("GPU tier runs 'ten'", lambda: gpu_tier_settings({"GREENBENCH_FP16_RUNS": "ten"}), ValueError,
     "GREENBENCH_FP16_RUNS='ten': takes an integer in \\[2, 1000\\]"),
    ("GPU tier window NaN", lambda: gpu_tier_settings({"GREENBENCH_WINDOW_CAP_S": "nan"}), ValueError,
     "WINDOW_CAP_S='nan': takes a number in"),
    ("GPU rehearsal 'maybe'", lambda: gpu_tier_settings({"GREENBENCH_GPU_REHEARSAL": "maybe"}), ValueError,
     "GREENBENCH_GPU_REHEARSAL"),
    # carbon
    ("unknown country", lambda: carbon.carbon_intensity("XXX"), ValueError, "no carbon intensity"),
    ("NaN joules", lambda: carbon.emissions_kg(NAN, "FRA"), ValueError, "energy \\(J\\) must be finite"),
    ("inf joules", lambda: carbon.regional_emissions(INF), ValueError, "energy \\(J\\) must be finite"),
    ("negative joules", lambda: carbon.emissions_kg(-5.0, "FRA"), ValueError, "≥ 0"),
    # claims, baselines
    ("metric NaN", lambda: Metric(NAN), ValueError, "a metric's value must be finite"),
    ("metric inf", lambda: Metric(INF), ValueError, "a metric's value must be finite"),
    ("metric spread NaN", lambda: Metric(1.0, NAN), ValueError, "a metric's spread must be finite"),
    ("metric better 'up'", lambda: Metric(1.0, better="up"), ValueError, "better must be"),
    ("measured figure an array", lambda: ClaimRecord("compression-8x", "c", "x", "t", {"a": np.ones(3)}, True,
                                                     {}).to_json(), ValueError, "measured 'a' is a ndarray"),
    # metrics, fits, rate-distortion, compression
    ("negative labels", lambda: metrics.confusion_matrix(np.array([0, -1]), np.array([0, 1])), ValueError,
     "non-negative integer"),
    ("float labels", lambda: metrics.confusion_matrix(np.array([0.5, 1]), np.array([0, 1])), ValueError,
     "non-negative integer"),
    ("top-0 accuracy", lambda: metrics.top_k_accuracy(np.ones((2, 3)), np.array([0, 1]), 0), ValueError, "k must"),
    ("NaN scores", lambda: metrics.top_k_accuracy(np.array([[NAN, 1.0]]), np.array([0]), 1), ValueError, "NaN"),
    ("label without a score", lambda: metrics.top_k_accuracy(np.ones((2, 3)), np.array([0, 5]), 1), ValueError,
     "no score column"),
    ("fit NaN weights", lambda: dist.fit_families(np.array([1.0, NAN, 2.0] * 100)), ValueError, "non-finite"),
    ("fit constant weights", lambda: dist.fit_families(np.zeros(1000)), ValueError, "two distinct"),
    ("fit unknown family", lambda: dist.fit_families(np.random.default_rng(0).normal(size=100), families=("x",)),
     ValueError, "unknown distribution families"),
    ("empty source", lambda: rd.EmpiricalSource(np.array([])), ValueError, "is empty"),
    ("ECSQ λ < 0", lambda: rd.design_ecsq(LAPLACE, -1.0), ValueError, "Lagrange multiplier"),
    ("Shannon bound at −1 bit", lambda: rd.shannon_lower_bound_snr(-1.0, scipy.stats.laplace), ValueError,
     "rates must be finite"),
    ("interval of NaN weights", lambda: compression.covering_interval(np.array([NAN, 1.0])), ValueError, "finite"),
    ("interval of no weights", lambda: compression.covering_interval(np.array([])), ValueError, "non-empty"),
    ("grid over [−0, 0]", lambda: compression.thesis_grid(0.0), ValueError, "xmax must be"),
    ("budget NaN pp", lambda: compression.best_within_budget([], NAN), ValueError, "budget"),
    # models, data, training
    ("unknown network", lambda: models.build_network("nope"), ValueError, "unknown network 'nope'"),
    ("MACs of a wrong input", lambda: models.count_macs(models.build_network("lenet5"), (3, 5, 5)), ValueError,
     "does not take inputs of shape"),
    ("unknown data set", lambda: data.load_dataset("nope"), ValueError, "unknown data set"),
    ("float images", lambda: data.to_network_input(np.zeros((1, 1, 28, 28), np.float32)), ValueError, "uint8"),
    ("images without a batch axis", lambda: data.to_network_input(np.zeros((1, 28, 28), np.uint8)), ValueError,
     "\\(N, C, H, W\\)"),
    ("split of no images", lambda: data.train_validation_split(0), ValueError, "number of images to split must be ≥ 2"),
    ("split fraction 2", lambda: data.train_validation_split(10, train_fraction=2.0), ValueError, "train_fraction"),
    ("train 0 epochs", lambda: training.train_network("lenet5", None, 0), ValueError, "epochs must be"),
    ("train batch 2.5", lambda: training.train_network("lenet5", None, 1, batch_size=2.5), ValueError,
     "batch_size must be"),
    ("train limit −3", lambda: training.train_network("lenet5", None, 1, train_limit=-3), ValueError, "train_limit"),
    ("train lr NaN", lambda: training.train_network("lenet5", None, 1, lr=NAN), ValueError, "lr must be"),
]


def _forged_stream() -> bytes:
    """A stream with a valid checksum whose header claims 2^50 symbols (must not allocate them)."""
    import struct
    import zlib

    body = b"GBRC\x02" + struct.pack("<qqI", 0, 2**50, 2**31)
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize("call, error, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_is_a_clear_error(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()


# ----------------------------------------------------------------------- files and the command line

def _baseline(tmp_path, text: str):
    path = tmp_path / "cpu-x" / "affine-quantization.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return BaselineStore(tmp_path, "cpu-x")


def _valid_baseline(value: str) -> str:
    return ('{"schema": "greenbench.baseline/1", "claim": "affine-quantization", "profile": "cpu-x", '
            '"provenance": {"date": "d", "hardware": {}, "versions": {}}, "cases": {"t": {"outcome": "reproduced", '
            f'"date": "d", "measured": {{}}, "metrics": {{"m": {{"value": {value}, "spread": 0.1}}}}}}}}}}')


@pytest.mark.parametrize("text, fragment", [
    (_valid_baseline("NaN"), "non-finite number \\(NaN\\)"),
    (_valid_baseline("Infinity"), "non-finite number \\(Infinity\\)"),
    (_valid_baseline("-Infinity"), "non-finite number \\(-Infinity\\)"),
    (_valid_baseline('"1.0"'), "fails the baseline schema at cases/t/metrics/m/value"),
    ("", "not valid JSON"),
    ("\udcff".encode("utf-8", "surrogateescape").decode("latin-1"), "not valid JSON|not UTF-8"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
], ids=["nan", "inf", "-inf", "string-value", "empty", "binary", "deep"])
def test_damaged_baselines_are_refused(tmp_path, text, fragment):
    store = _baseline(tmp_path, text)
    with pytest.raises(BaselineError, match=fragment):
        store.load("affine-quantization")


def test_a_valid_baseline_still_loads(tmp_path):
    assert _baseline(tmp_path, _valid_baseline("1.5")).load("affine-quantization")["cases"]["t"]["metrics"]


@pytest.mark.parametrize("argv, fragment", [
    (["compare", "--profile", "cpu-nowhere"], "no stored profile 'cpu-nowhere'"),
    (["compare", "--profile", "cpu-x", "--against", "cuda-nowhere"], "no stored profile 'cuda-nowhere'"),
    (["compare", "--run", "{missing}"], "does not exist"),
    (["compare", "--run", "{empty}"], "is not readable JSON"),
    (["compare", "--run", "{not_claims}"], "is not a greenbench claims file"),
    (["compare", "--run", "{no_records}"], "holds no claim records"),
    (["report", "--report-dir", "{missing_dir}"], "claims.json does not exist"),
    (["report", "--report-dir", "{bad_dir}"], "is not a greenbench claims file"),
    (["compare", "--run", "{deep}"], "nested too deeply"),
    (["report", "--report-dir", "{deep_dir}"], "nested too deeply"),
], ids=["profile", "against", "run-missing", "run-empty", "run-not-claims", "run-no-records", "report-missing",
        "report-bad", "run-deep", "report-deep"])
def test_compare_refuses_what_it_cannot_compare(tmp_path, capsys, argv, fragment):
    _baseline(tmp_path, _valid_baseline("1.5"))
    files = {"missing": tmp_path / "missing.json", "empty": tmp_path / "empty.json",
             "not_claims": tmp_path / "other.json", "no_records": tmp_path / "none.json",
             "missing_dir": tmp_path / "no-report", "bad_dir": tmp_path / "bad-report", "deep": tmp_path / "deep.json",
             "deep_dir": tmp_path / "deep-report"}
    files["bad_dir"].mkdir()
    files["deep_dir"].mkdir()
    files["deep"].write_text("[" * 100_000 + "]" * 100_000)
    (files["deep_dir"] / "claims.json").write_text(files["deep"].read_text())
    (files["bad_dir"] / "claims.json").write_text("{}")
    files["empty"].write_text("")
    files["not_claims"].write_text(json.dumps({"rows": [{"record": {"claim_id": 3}}]}))
    files["no_records"].write_text(json.dumps({"provenance": {}, "rows": []}))
    argv = [a.format(**files) for a in argv] + ["--baseline-dir", str(tmp_path)]
    assert cli.main(argv) == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize("argv, fragment", [
    (["train", "lenet5", "--epochs", "0"], "--epochs: must be an integer ≥ 1, got 0"),
    (["train", "lenet5", "--batch-size", "x"], "--batch-size: must be an integer ≥ 1, got 'x'"),
    (["train", "lenet5", "--train-limit", "-5"], "--train-limit: must be an integer ≥ 1, got -5"),
    (["run", "--workers", "0"], "--workers: must be an integer ≥ 1, got 0"),
])
def test_cli_arguments_are_validated(capsys, argv, fragment):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2 and fragment in capsys.readouterr().err


def _checkpoint_copy(tmp_path, meta):
    from pathlib import Path

    source = Path(__file__).resolve().parent.parent / "fixtures" / "lenet5-fashion-mnist.safetensors"
    path = tmp_path / "model.safetensors"
    path.write_bytes(source.read_bytes())
    digest = __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    path.with_suffix(".json").write_text(meta.replace("{sha}", digest))
    return path


@pytest.mark.parametrize("meta, fragment", [
    ("{bad", "is not valid JSON"),
    ('{"weights_sha256": "{sha}"}', "does not name its network"),
    ('{"weights_sha256": "abc", "network": "lenet5"}', "differs from its provenance"),
    ('{"weights_sha256": "{sha}", "network": "googlenet"}', "does not hold the weights of a googlenet"),
], ids=["json", "no-network", "sha", "other-network"])
def test_damaged_checkpoints_are_refused(tmp_path, meta, fragment):
    with pytest.raises(ValueError, match=fragment):
        training.load_checkpoint(_checkpoint_copy(tmp_path, meta))


FUZZ = __import__("pathlib").Path(__file__).with_name("fuzz_decoders.py")


@pytest.mark.parametrize("examples", [200, pytest.param(3000, marks=pytest.mark.nightly)])
def test_decoders_survive_structurally_valid_hostile_files(examples):
    """suite/fuzz_decoders.py in a subprocess (index stream, context stream, container): a decoder that
    crashes the process fails here, naming the signal."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(FUZZ), str(examples)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (f"fuzzing ended with "
                                  f"{'signal ' + str(-done.returncode) if done.returncode < 0 else done.returncode}:"
                                  f"\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    assert done.stdout.count("every one exact or refused") == 3
