"""Every `GREENBENCH_*` environment variable, read through one validating parser.

A bad value is a `SettingError` naming the variable and what it accepts, in one line; the pytest
plugin and the command line show it as a usage error, never as a traceback or a silently different run.
The README's table of variables is this module's `VARIABLES`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from greenbench.core.validation import check_scalar, interval_text

PREFIX = "GREENBENCH_"
TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


class SettingError(ValueError):
    """An environment variable of greenbench's holds a value it does not accept."""


@dataclass(frozen=True)
class Variable:
    name: str
    kind: str  # "int", "float", "bool", "choice" or "text"
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def accepts(self) -> str:
        """What the variable takes, in words."""
        bounds = interval_text(self.low, self.high)
        return {"int": f"an integer {bounds}".strip(), "float": f"a number {bounds}".strip(),
                "bool": "1 or 0 (true/false, yes/no)", "choice": "one of " + ", ".join(self.choices),
                "text": "any text"}[self.kind]

    def parse(self, text: str) -> Any:
        value: Any = text.strip()
        if self.kind == "text":
            return text
        if self.kind == "bool":
            if value.lower() in TRUE:
                return True
            if value.lower() in FALSE:
                return False
        elif self.kind == "choice":
            if value in self.choices:
                return value
        else:
            kind = int if self.kind == "int" else float
            try:  # the number's range is checked as every argument's is
                return check_scalar(kind(value), self.name, kind, low=self.low, high=self.high)
            except ValueError:
                pass
        raise SettingError(f"{self.name}={text!r}: takes {self.accepts()} ({self.help})")


VARIABLES: dict[str, Variable] = {v.name: v for v in (
    Variable("GREENBENCH_HYPOTHESIS_PROFILE", "choice", "hypothesis profile of greenbench's own suite",
             choices=("dev", "ci", "nightly")),
    Variable("GREENBENCH_THREADS", "int", "threads of torch, numba and onnxruntime in greenbench's suite (0: their "
             "default; the suite sets 1 per xdist worker)", low=0, high=4096),
    Variable("GREENBENCH_GPU_REHEARSAL", "bool", "run the GPU tier's tests on the CPU against a simulated NVML"),
    Variable("GREENBENCH_GPU", "int", "the CUDA device the GPU tier runs on and meters (default 0; NVML's handle "
             "is matched by UUID or PCI bus id)", low=0, high=1023),
    Variable("GREENBENCH_SIMULATED_NVML", "text", "the rehearsal's simulated NVML: comma-separated faults "
             "(power-not-supported, power-1s-average, no-field-values, state-not-supported) and period=SECONDS"),
    Variable("GREENBENCH_GPU_TEST_IMAGES", "int", "test images of the GPU tier (default: all; rehearsal 32)",
             low=1),
    Variable("GREENBENCH_FP16_RUNS", "int", "runs per network of the paper loop's series in fp16-energy (default 10)",
             low=2, high=1000),
    Variable("GREENBENCH_KERNEL_RUNS", "int", "runs per network of the kernel loop's series in fp16-energy "
             "(default 3)", low=2, high=1000),
    Variable("GREENBENCH_WINDOW_CAP_S", "float", "longest NVML measurement window, seconds (default 1.0)",
             low=0.01, high=60),
    Variable("GREENBENCH_MNIST_EPOCHS", "int", "epochs of each mnist-energy training (default 2)", low=1, high=1000),
    Variable("GREENBENCH_MNIST_TRAININGS", "int", "trainings per network in mnist-energy (default 3)", low=2,
             high=100),
    Variable("GREENBENCH_MNIST_TRAIN_LIMIT", "int", "training images of mnist-energy (default: all)", low=1),
    Variable("GREENBENCH_CHECKPOINT_DIR", "text", "more trained checkpoints, beside fixtures/"),
    Variable("GREENBENCH_FASHION_MNIST", "text", "the folder holding Fashion-MNIST's four IDX files"),
    Variable("GREENBENCH_MNIST", "text", "the folder holding MNIST's four IDX files"),
    Variable("GREENBENCH_CIFAR10", "text", "the folder holding CIFAR-10's python batches"),
    Variable("GREENBENCH_DATA_DIR", "text", "a folder with one sub-folder per data set"),
    Variable("GREENBENCH_DOWNLOAD", "bool", "let the loaders download a missing data set (md5-checked)"),
    Variable("GREENBENCH_TORCH", "text", "tools/run: the torch requirement to install (default torch==2.13.0)"),
    Variable("GREENBENCH_EXTRAS", "text", "tools/run: the extras to install (default test; test,gpu with a GPU)"),
)}


def setting(name: str, default: Any = None, environ: Mapping[str, str] | None = None) -> Any:
    """The parsed value of a greenbench variable, or `default` when it is unset or empty."""
    var = VARIABLES[name]  # an unknown name is a programming error
    text = (os.environ if environ is None else environ).get(name)
    if text is None or (text.strip() == "" and var.kind != "bool"):
        return default
    value = var.parse(text)
    return default if var.kind == "bool" and text.strip() == "" else value


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Parse every greenbench variable that is set; the first bad or unknown one raises SettingError."""
    environ = os.environ if environ is None else environ
    for name in sorted(k for k in environ if k.startswith(PREFIX)):
        if name not in VARIABLES:
            raise SettingError(f"{name} is not a greenbench variable (a typo?); known: {', '.join(VARIABLES)}")
        setting(name, environ=environ)


def xdist_gpu(environ: Mapping[str, str] | None = None) -> int:
    """`pytest -m gpu -n <gpus>`: xdist worker gwN takes CUDA device N (0 outside xdist)."""
    worker = (os.environ if environ is None else environ).get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
