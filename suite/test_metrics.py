"""Metrics against scikit-learn on random and adversarial label sets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn import metrics as skm

from greenbench.analysis.metrics import (
    classification_report,
    confusion_matrix,
    mean_reciprocal_rank,
    top_k_accuracy,
    true_class_rank,
)

pairs = st.integers(1, 300).flatmap(lambda n: st.tuples(
    hnp.arrays(np.int64, n, elements=st.integers(0, 9)), hnp.arrays(np.int64, n, elements=st.integers(0, 9))))

ADVERSARIAL = {
    "all one class, all right": (np.zeros(50, int), np.zeros(50, int)),
    "all one class, all wrong": (np.zeros(50, int), np.ones(50, int)),
    "a class never predicted": (np.array([0, 1, 2, 2]), np.array([0, 1, 1, 1])),
    "a class only predicted": (np.array([0, 0, 1]), np.array([0, 3, 1])),
    "single sample": (np.array([4]), np.array([4])),
}


def _check_against_sklearn(y_true, y_pred):
    report = classification_report(y_true, y_pred)
    assert report.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred))
    for ours, name in ((report.precision, "precision_score"), (report.recall, "recall_score"), (report.f1, "f1_score")):
        assert ours == pytest.approx(getattr(skm, name)(y_true, y_pred, average="macro", zero_division=0))
    k = int(max(y_true.max(), y_pred.max())) + 1
    expected = skm.confusion_matrix(y_true, y_pred, labels=range(k))
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred), expected)


@pytest.mark.property
@given(pair=pairs)
def test_classification_metrics_match_sklearn(pair):
    _check_against_sklearn(*pair)


@pytest.mark.parametrize("case", list(ADVERSARIAL))
def test_adversarial_label_sets_match_sklearn(case):
    _check_against_sklearn(*ADVERSARIAL[case])


@pytest.mark.property
@given(n=st.integers(1, 200), k=st.integers(1, 10), seed=st.integers(0, 2**32 - 1))
def test_top_k_and_mrr_match_sklearn(n, k, seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n, 10))  # continuous: no ties, so tie rules cannot differ
    y = rng.integers(0, 10, size=n)
    assert top_k_accuracy(scores, y, k) == pytest.approx(skm.top_k_accuracy_score(y, scores, k=k, labels=range(10)))
    onehot = np.eye(10)[y]
    assert mean_reciprocal_rank(scores, y) == pytest.approx(skm.label_ranking_average_precision_score(onehot, scores))


def test_ties_count_against_the_true_class():
    scores = np.array([[1.0, 1.0, 0.0]])
    assert true_class_rank(scores, np.array([0]))[0] == 2
    assert top_k_accuracy(scores, np.array([0]), 1) == 0.0


@pytest.mark.parametrize("args, problem", [
    ((np.array([0, 1]), np.array([0])), "differ in length"),
    ((np.array([]), np.array([])), "non-empty"),
    ((np.array([0.5]), np.array([1])), "integer class labels"),
])
def test_bad_labels_raise(args, problem):
    with pytest.raises(ValueError, match=problem):
        classification_report(*args)


def test_bad_scores_raise():
    with pytest.raises(ValueError, match="NaN or inf"):
        top_k_accuracy(np.array([[np.nan, 1.0]]), np.array([0]), 1)
    with pytest.raises(ValueError, match="no score column"):
        top_k_accuracy(np.array([[0.0, 1.0]]), np.array([5]), 1)
