"""This suite's own fixtures: the data set, the trained networks and what is derived from them.

The claim machinery (the `claim` fixture, baselines, the claims table, the GPU fixtures) is
greenbench's pytest plugin, `greenbench/pytest_plugin.py`, loaded through its entry point.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch  # noqa: F401 - imported before pytester snapshots sys.modules: torch cannot be imported twice
from hypothesis import HealthCheck, settings

from greenbench.core.provenance import atomic_write_json
from greenbench.core.settings import SettingError, check_environment, setting
from greenbench.pytest_plugin import write_artifact

# greenbench's own suite: its hypothesis profiles and thread counts (the plugin sets neither for other suites)
try:
    check_environment()
except SettingError as exc:
    raise pytest.UsageError(str(exc)) from None
settings.register_profile("dev", max_examples=60, deadline=None)
# ci: 75 examples (was 100) keeps the fresh-clone default tier inside its 5 minutes on 2 cores; nightly runs 2,000
settings.register_profile("ci", max_examples=75, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=2000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(setting("GREENBENCH_HYPOTHESIS_PROFILE", "dev"))
if os.environ.get("PYTEST_XDIST_WORKER"):  # one thread per worker: the workers already fill the cores
    os.environ.setdefault("GREENBENCH_THREADS", "1")
if setting("GREENBENCH_THREADS"):
    import numba

    torch.set_num_threads(setting("GREENBENCH_THREADS"))
    numba.set_num_threads(min(setting("GREENBENCH_THREADS"), numba.config.NUMBA_NUM_THREADS))

ROOT = Path(__file__).parent
# pytester for the plugin's own tests; the plugin itself also where greenbench is only on PYTHONPATH
# (tools/gpu-run on a device): its entry point has the module's name, so it is never loaded twice
pytest_plugins = ("pytester", "greenbench.pytest_plugin")
FIXTURES = ROOT / "fixtures"
CHECKPOINT_DIR_ENV = "GREENBENCH_CHECKPOINT_DIR"
USER_MODEL_PREFIX = "model:"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("greenbench").addoption(
        "--model", action="append", default=[], metavar="PATH[::DATA]",
        help="add your own model (ONNX; DATA an .npz with 'inputs' and 'labels') as a case of the network claims: "
             "laplacian-weights, deadzone-optimal and compression-8x (repeatable)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "networks(names): the test runs on these trained networks and on every --model")


def user_models(config: pytest.Config) -> dict[str, tuple[Path, Path | None]]:
    """--model options by case id (`model:<file stem>`): the model file and its data file, if any."""
    models = {}
    for option in config.getoption("--model"):
        path_text, _, data_text = option.partition("::")
        path, data = Path(path_text), Path(data_text) if data_text else None
        for f in filter(None, (path, data)):
            if not f.is_file():
                raise pytest.UsageError(f"--model {option}: {f} is not a file")
        name = USER_MODEL_PREFIX + path.stem
        if name in models:
            raise pytest.UsageError(f"--model {option}: a model named {path.stem} is given twice")
        models[name] = (path, data)
    return models


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("networks")
    if marker is not None:
        from suite.tiers import network_params

        params = network_params(*marker.args) + [pytest.param(n, id=n) for n in user_models(metafunc.config)]
        metafunc.parametrize("network", params)


@pytest.fixture(scope="session")
def fashion_mnist():
    """The real Fashion-MNIST (checksums verified), or a skip that says what is missing and how to get it."""
    from greenbench.nn.data import DatasetMissingError, load_dataset

    try:
        return load_dataset("fashion-mnist")
    except DatasetMissingError as exc:
        pytest.skip(str(exc))


class TrainedNetworks:
    """Checkpoints in fixtures/ (committed) and what the suite derives from them, computed once."""

    def __init__(self, dataset, config: pytest.Config, shared_dir: Path):
        from greenbench.nn.training import available_checkpoints

        self.dataset = dataset
        self.config = config
        self.shared_dir = shared_dir
        self.paths = available_checkpoints(FIXTURES)
        self.user_models = user_models(config)
        extra = os.environ.get(CHECKPOINT_DIR_ENV)
        if extra:  # checkpoints trained by tools/gpu-run, beside (and before) the committed ones
            if not Path(extra).is_dir():
                raise pytest.UsageError(f"{CHECKPOINT_DIR_ENV}={extra}: no such folder")
            self.paths.update(available_checkpoints(Path(extra)))
        self._cache: dict = {}

    def checkpoint(self, network: str):
        from greenbench.nn.training import load_checkpoint

        if network not in self.paths:
            pytest.skip(f"no trained {network} checkpoint in {FIXTURES} (train one: "
                        f"python tools/train.py {network} --output {FIXTURES}/{network}-fashion-mnist.safetensors)")
        key = ("checkpoint", network)
        if key not in self._cache:
            self._cache[key] = load_checkpoint(self.paths[network])
        return self._cache[key]

    def model_for_gpu_tier(self, network: str, rehearsal: bool):
        """The trained network; in a rehearsal, seeded weights stand in for a missing checkpoint."""
        if network not in self.paths and rehearsal:
            from greenbench.nn.models import build_network

            return build_network(network, seed=0), {"weights": "seeded (no checkpoint; rehearsal)"}
        model, meta = self.checkpoint(network)
        return model, {"checkpoint_sha256": meta["weights_sha256"], "epochs": meta.get("epochs")}

    def inputs(self, network: str) -> dict:
        """What a figure on this network was measured on (for the baseline's provenance)."""
        if network in self.user_models:
            import hashlib

            return {f"{role}_sha256": hashlib.sha256(f.read_bytes()).hexdigest()
                    for role, f in zip(("model", "data"), self.user_models[network]) if f is not None}
        _, meta = self.checkpoint(network)
        return {"data_md5": self.dataset.checksum, "checkpoint_sha256": meta["weights_sha256"]}

    def user_model(self, network: str):
        from greenbench.nn.modelstudy import ModelFileError, load_user_model

        key = ("user", network)
        if key not in self._cache:
            try:
                self._cache[key] = load_user_model(self.user_models[network][0])
            except ModelFileError as exc:
                raise pytest.UsageError(f"--model: {exc}") from None
        return self._cache[key]

    def weights(self, network: str):
        """Every weight and bias of the network as the graph has them (BatchNorm folded where it is)."""
        from greenbench.coding.weights import flat_weights

        if network in self.user_models:
            return self.user_model(network).flat
        return flat_weights(self.onnx(network))

    def onnx(self, network: str):
        from greenbench.nn.models import network_spec
        from greenbench.nn.onnx_eval import export_onnx

        key = ("onnx", network)
        if key not in self._cache:
            if network in self.user_models:
                proto = self.user_model(network).proto
                if proto is None:
                    pytest.skip(f"{network} is a weights-only file: this claim runs the graph (give an ONNX model)")
                self._cache[key] = proto
            else:
                model, _ = self.checkpoint(network)
                self._cache[key] = export_onnx(model, network_spec(network).input_shape)
        return self._cache[key]

    def test_set(self, network: str):
        from greenbench.nn.data import to_network_input
        from greenbench.nn.models import network_spec

        if network in self.user_models:
            from greenbench.nn.modelstudy import ModelFileError, load_model_data

            path, data = self.user_models[network]
            self.onnx(network)  # a weights-only file skips here: no graph to run
            if data is None:
                pytest.skip(f"{network}: this claim needs labelled data (--model {path}::DATA.npz)")
            try:
                loaded = load_model_data(data, self.user_model(network))
            except ModelFileError as exc:
                raise pytest.UsageError(f"--model: {exc}") from None
            if loaded.labels is None:
                pytest.skip(f"{network}: {data} holds no labels; this claim measures accuracy loss")
            return loaded.inputs, loaded.labels
        return to_network_input(self.dataset.test_images, network_spec(network).input_shape).numpy(), \
            self.dataset.test_labels

    def lowest_rate(self, network: str):
        """The thesis grid's lowest-entropy setting within 0.8 pp, and the evaluator that found it (one screened scan
        of all families, `lowest_rate_within_budget`: what `compression_study(network).best` is, in a fraction of
        its time, so no worker waits on another's study)."""
        from greenbench.nn.budget import NetworkEvaluator, lowest_rate_within_budget

        key = ("lowest", network)
        if key not in self._cache:
            x, y = self.test_set(network)
            evaluator = NetworkEvaluator(self.onnx(network), x, y)
            self._cache[key] = lowest_rate_within_budget(evaluator, 0.8), evaluator
        return self._cache[key]

    def compression_study(self, network: str):
        """The budget search of one network, computed once per session even across xdist workers.

        The first worker to ask computes it under a file lock in the session's shared temporary
        folder; the others read its JSON (xdist's recipe for session fixtures that must run once).
        """
        import fcntl

        from greenbench.nn.budget import NetworkStudy, study_network

        key = ("study", network)
        if key not in self._cache:
            path = self.shared_dir / f"compression-study-{network}.json"
            with open(path.with_suffix(".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if path.is_file():
                    study = NetworkStudy.from_json(json.loads(path.read_text()))
                else:
                    x, y = self.test_set(network)
                    study = study_network(network, self.onnx(network), x, y)
                    stored = study.to_json()
                    atomic_write_json(path, stored)
                    write_artifact(self.config, f"rate_accuracy_{network}.json", stored)
            self._cache[key] = study
        return self._cache[key]


@pytest.fixture(scope="session")
def trained_networks(fashion_mnist, request, tmp_path_factory) -> TrainedNetworks:
    base = tmp_path_factory.getbasetemp()
    # an xdist worker's basetemp is a folder of the session's: its parent is shared by the session's workers. The
    # environment variable would not do: a pytest started by a test inherits it, and would share a folder with
    # every session before it
    shared = base.parent if hasattr(request.config, "workerinput") else base
    return TrainedNetworks(fashion_mnist, request.config, shared)


@pytest.fixture(scope="session")
def benchmark_data(fashion_mnist):
    """The FP16 benchmark's test set: CIFAR-10 where present, else Fashion-MNIST as 3×32×32."""
    from greenbench.nn.data import load_first_available

    return load_first_available("cifar-10", "fashion-mnist")
