"""Where a measured figure comes from: hardware fingerprint, library versions, date.

Every stored artifact (baseline, checkpoint, report) carries `provenance()`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("greenbench", "numpy", "scipy", "torch", "numba", "onnx", "onnxruntime", "onnxruntime-gpu",
             "codecarbon", "constriction", "nvidia-ml-py", "zeus", "typing-extensions", "jsonschema")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return match.group(1).strip() if match else (platform.processor() or "unknown")


def _gpu() -> dict[str, Any] | None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return None
    if not torch.cuda.is_available():
        return None
    info: dict[str, Any] = {"model": torch.cuda.get_device_name(0), "cuda": torch.version.cuda,
                            "count": torch.cuda.device_count()}
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - NVML's details are optional, it may be absent
        return {**info, "driver": "unknown"}
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    for key, read in (("driver", pynvml.nvmlSystemGetDriverVersion),
                      ("power_limit_w", lambda: pynvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000),
                      ("application_sm_clock_mhz", lambda: pynvml.nvmlDeviceGetApplicationsClock(handle, 1))):
        try:
            info[key] = read()
        except Exception:  # noqa: BLE001 - a read NVML refuses (a VM) is left out, never a crash
            info.setdefault(key, "unknown")
    pynvml.nvmlShutdown()
    return info


@lru_cache(maxsize=1)
def hardware_fingerprint() -> dict[str, Any]:
    return {
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "gpu": _gpu(),
    }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def hardware_profile(fingerprint: dict[str, Any] | None = None, measured_energy: bool = False,
                     on_gpu: bool | None = None) -> str:
    """The name baselines are stored under: that of the device a figure was measured on.

    CPU-only results of this suite are deterministic numerics, so machines of one architecture share
    a profile (`cpu-x86-64`), on a GPU machine too; measured energy or time belongs to one machine
    model, so a CPU profile holding them names the CPU model too; a figure measured on a GPU
    (`on_gpu`) belongs to the GPU's model (`cuda-<model>`). Without `on_gpu` the profile is the
    machine's: its GPU where it has one. The full fingerprint is stored beside each baseline.
    """
    fp = fingerprint or hardware_fingerprint()
    if fp.get("gpu") and on_gpu is not False:
        return "cuda-" + _slug(fp["gpu"]["model"])
    profile = "cpu-" + _slug(fp["machine"] or "unknown")
    return f"{profile}-{_slug(fp.get('cpu_model') or 'unknown')}" if measured_energy else profile


def provenance(**extra: Any) -> dict[str, Any]:
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "profile": hardware_profile(),
        "hardware": hardware_fingerprint(),
        "versions": library_versions(),
        "threads": os.environ.get("GREENBENCH_THREADS", "default"),
        **extra,
    }


ENVIRONMENT_KEYS = ("hardware", "versions", "threads")  # what can explain a jump; not the date or the profile


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def environment_diff(reference: dict[str, Any], run: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, reference's, run's) for each environment field that differs between two provenances: CPU and GPU
    model, driver, CUDA, library versions, thread count, power limit and clocks where recorded (None: absent)."""
    ref = _flat({k: reference.get(k) for k in ENVIRONMENT_KEYS if k in reference})
    new = _flat({k: run.get(k) for k in ENVIRONMENT_KEYS if k in run})
    return [(key, ref.get(key), new.get(key)) for key in sorted(ref.keys() | new.keys())
            if ref.get(key) != new.get(key)]


def atomic_write_json(path: Path, payload: Any, sort_keys: bool = True) -> None:
    """Write JSON so that a reader sees the old file or the new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=sort_keys)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes files private; baselines and reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
