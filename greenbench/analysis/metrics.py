"""Classification metrics from labels and scores (thesis §2.4; seed 000 Table 3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _labels(y: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D array of class labels, got shape {arr.shape}")
    if arr.dtype.kind not in "iu" or arr.min() < 0:
        raise ValueError(f"{what} must hold non-negative integer class labels")
    return arr.astype(np.int64)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Counts C[i, j] of true class i predicted as j."""
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in length")
    k = num_classes or int(max(t.max(), p.max())) + 1
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


@dataclass(frozen=True)
class ClassificationReport:
    accuracy: float
    precision: float  # macro averages over classes present in y_true or y_pred
    recall: float
    f1: float


def classification_report(y_true: np.ndarray, y_pred: np.ndarray) -> ClassificationReport:
    """Accuracy and macro precision/recall/F1 (a class with no predictions has precision 0)."""
    cm = confusion_matrix(y_true, y_pred)
    present = (cm.sum(0) + cm.sum(1)) > 0
    tp = np.diag(cm).astype(np.float64)
    predicted, actual = cm.sum(0).astype(np.float64), cm.sum(1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return ClassificationReport(float(tp.sum() / cm.sum()), float(precision[present].mean()),
                                float(recall[present].mean()), float(f1[present].mean()))


def _scores(scores: np.ndarray, y_true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    t = _labels(y_true, "y_true")
    if s.ndim != 2 or s.shape[0] != t.size:
        raise ValueError(f"scores must be (n, classes) for {t.size} labels, got {s.shape}")
    if t.max() >= s.shape[1]:
        raise ValueError(f"label {t.max()} has no score column (scores have {s.shape[1]} classes)")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores hold NaN or inf")
    return s, t


def true_class_rank(scores: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """1-based rank of the true class; ties count against it (a tied class ranks ahead)."""
    s, t = _scores(scores, y_true)
    true_score = s[np.arange(t.size), t][:, None]
    return (s > true_score).sum(1) + (s == true_score).sum(1)


def top_k_accuracy(scores: np.ndarray, y_true: np.ndarray, k: int) -> float:
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    return float((true_class_rank(scores, y_true) <= k).mean())


def mean_reciprocal_rank(scores: np.ndarray, y_true: np.ndarray) -> float:
    return float((1.0 / true_class_rank(scores, y_true)).mean())
