"""Seed 003's distillation claim under a pre-registered protocol, so that no single setting decides it.

1. Selection: every (T, α) of a small stated grid (Hinton et al. 2015 use T in 2–20 and a large weight on
   the soft targets) trains the student for `SELECTION_EPOCHS` on the first seed's training split; the
   setting with the highest accuracy on that seed's validation split is chosen (ties: the earlier in
   the grid). The test set is not looked at.
2. Comparison: for each of `SEEDS`, the student is trained for `EPOCHS` on the labels alone and with the
   chosen setting (same seed: same initialisation, split and batch order); the claim test compares them
   on the test set, and its verdict stands whatever it is.
Every checkpoint is kept with its provenance; a rerun resumes, skipping the checkpoints that exist.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch.nn as nn

from greenbench.core.provenance import atomic_write_json, provenance
from greenbench.nn.data import SPLIT_SEED, Dataset
from greenbench.nn.training import load_checkpoint, save_training, train_network

log = logging.getLogger(__name__)

TEMPERATURES = (2.0, 4.0, 8.0)
ALPHAS = (0.5, 0.9)
GRID = tuple((t, a) for t in TEMPERATURES for a in ALPHAS)
SELECTION_EPOCHS = 5
EPOCHS = 15
SEEDS = (SPLIT_SEED, 1, 2)
STUDENT = "student"
PROTOCOL_FILE = "distillation-protocol.json"
PROTOCOL_VERSION = 1


def student_checkpoint(folder: Path, kind: str, seed: int, dataset: str = "fashion-mnist") -> Path:
    """`student-<labels|distilled>-<dataset>[-seed<k>].safetensors`; the first seed keeps the plain name."""
    if kind not in ("labels", "distilled"):
        raise ValueError(f"unknown student kind {kind!r}: 'labels' or 'distilled'")
    suffix = "" if seed == SPLIT_SEED else f"-seed{seed}"
    return Path(folder) / f"{STUDENT}-{kind}-{dataset}{suffix}.safetensors"


def _train_and_save(path: Path, dataset: Dataset, seed: int, teacher: tuple[nn.Module, dict] | None,
                    setting: tuple[float, float] | None, progress: bool) -> dict[str, Any]:
    if path.is_file():
        log.info("%s exists; not retraining", path)
        return load_checkpoint(path)[1]
    model, meta = teacher if teacher is not None else (None, None)
    temperature, alpha = setting if setting is not None else (None, None)
    result = train_network(STUDENT, dataset, EPOCHS, seed=seed, progress=progress, teacher=model,
                           **({"temperature": temperature, "alpha": alpha} if model is not None else {}))
    return save_training(result, path, dataset, seed=seed, epochs=EPOCHS, batch_size=32, amp=False, device="cpu",
                         train_limit=None, teacher=meta["weights_sha256"] if meta else None,
                         temperature=temperature, alpha=alpha)


def select_setting(dataset: Dataset, teacher: nn.Module, progress: bool = False) -> list[dict[str, float]]:
    """Validation accuracy of every grid setting after `SELECTION_EPOCHS` (seed `SEEDS[0]`)."""
    rows = []
    for temperature, alpha in GRID:
        result = train_network(STUDENT, dataset, SELECTION_EPOCHS, seed=SEEDS[0], teacher=teacher,
                               temperature=temperature, alpha=alpha, progress=progress)
        rows.append({"temperature": temperature, "alpha": alpha,
                     "validation_accuracy": result.validation_accuracy, "seconds": round(result.seconds, 1)})
        log.info("T=%g alpha=%g: validation accuracy %.4f", temperature, alpha, result.validation_accuracy)
    return rows


def chosen_setting(selection: list[dict[str, float]]) -> tuple[float, float]:
    best = max(selection, key=lambda row: row["validation_accuracy"])  # max keeps the first of equals
    return best["temperature"], best["alpha"]


def run_protocol(dataset: Dataset, teacher_path: Path, folder: Path, progress: bool = False) -> dict[str, Any]:
    """Selection, then both students for every seed; writes `folder/PROTOCOL_FILE` and returns its record."""
    folder = Path(folder)
    teacher = load_checkpoint(Path(teacher_path))
    record_path = folder / PROTOCOL_FILE
    previous = read_protocol(folder) if record_path.is_file() else None
    if previous is not None and previous["teacher_sha256"] == teacher[1]["weights_sha256"]:
        selection = previous["selection"]
    else:
        selection = select_setting(dataset, teacher[0], progress)
    setting = chosen_setting(selection)
    record = provenance(version=PROTOCOL_VERSION, dataset=dataset.name, data_checksum=dataset.checksum,
                        teacher_sha256=teacher[1]["weights_sha256"], grid=[list(s) for s in GRID],
                        selection_epochs=SELECTION_EPOCHS, epochs=EPOCHS, seeds=list(SEEDS), selection=selection,
                        chosen={"temperature": setting[0], "alpha": setting[1]}, students={})
    atomic_write_json(record_path, record)  # the selection survives an interrupted run
    students = record["students"]
    for seed in SEEDS:
        for kind in ("labels", "distilled"):
            path = student_checkpoint(folder, kind, seed, dataset.name)
            meta = _train_and_save(path, dataset, seed, teacher if kind == "distilled" else None,
                                   setting if kind == "distilled" else None, progress)
            if kind == "distilled" and (meta.get("temperature"), meta.get("alpha")) != setting:
                raise ValueError(f"{path} was trained with T={meta.get('temperature')}, alpha={meta.get('alpha')}, "
                                 f"not the chosen T={setting[0]}, alpha={setting[1]}: remove it and rerun")
            students[f"{kind}-{seed}"] = {"file": path.name, "weights_sha256": meta["weights_sha256"],
                                          "test_accuracy": meta["test_accuracy"]}
    atomic_write_json(record_path, record)
    return record


def read_protocol(folder: Path) -> dict[str, Any]:
    """The protocol's record, checked: the keys the claim test reads, and the chosen setting being the grid's best."""
    path = Path(folder) / PROTOCOL_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no {path}: run `greenbench distil` (see greenbench.nn.distillation)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    missing = [k for k in ("version", "teacher_sha256", "selection", "chosen", "seeds", "students")
               if not isinstance(record, dict) or k not in record]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}")
    if record["version"] != PROTOCOL_VERSION:
        raise ValueError(f"{path} has version {record['version']!r}; this greenbench reads {PROTOCOL_VERSION}")
    chosen = (record["chosen"]["temperature"], record["chosen"]["alpha"])
    if chosen != chosen_setting(record["selection"]):
        raise ValueError(f"{path}: the chosen setting {chosen} is not the selection's best "
                         f"{chosen_setting(record['selection'])}")
    return record
