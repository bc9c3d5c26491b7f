"""Confusion matrix (rows = target, columns = prediction), recall, precision, accuracy and
the course's printout."""
from __future__ import annotations

import doctest

import numpy as np
import pytest

import nn.metrics
from nn.metrics import (accuracy, accuracy_from_confusion, confusion_matrix, format_confusion,
                        precision, recall)

# 6 examples of 3 classes; class 0 is twice predicted as 1, class 1 is never predicted as 0
TARGETS = np.array([0, 0, 0, 1, 1, 2])
PREDICTIONS = np.array([0, 1, 1, 1, 2, 2])
EXPECTED = np.array([[1, 2, 0],
                     [0, 1, 1],
                     [0, 0, 1]])


# -- confusion matrix ----------------------------------------------------------------------------
def test_confusion_matrix_rows_are_targets_and_columns_predictions():
    cm = confusion_matrix(TARGETS, PREDICTIONS)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, EXPECTED)
    # swapping the arguments transposes it: the orientation is not symmetric by accident
    np.testing.assert_array_equal(confusion_matrix(PREDICTIONS, TARGETS), EXPECTED.T)


def test_confusion_matrix_from_one_hot_rows_and_scores():
    one_hot_targets = np.eye(3)[TARGETS]
    scores = np.eye(3)[PREDICTIONS] * 0.8 + 0.05  # argmax is the prediction
    np.testing.assert_array_equal(confusion_matrix(one_hot_targets, scores), EXPECTED)
    np.testing.assert_array_equal(confusion_matrix(TARGETS, scores), EXPECTED)


def test_confusion_matrix_accepts_integer_valued_floats_and_column_vectors():
    cm = confusion_matrix(TARGETS.astype(float), PREDICTIONS.reshape(-1, 1))
    np.testing.assert_array_equal(cm, EXPECTED)


def test_confusion_matrix_with_more_classes_than_seen():
    cm = confusion_matrix(TARGETS, PREDICTIONS, n_classes=5)
    assert cm.shape == (5, 5)
    np.testing.assert_array_equal(cm[:3, :3], EXPECTED)
    assert cm[3:].sum() == 0 and cm[:, 3:].sum() == 0


def test_confusion_matrix_counts_sum_to_the_number_of_examples():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    cm = confusion_matrix(t, p, n_classes=4)
    assert cm.sum() == 50
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(t, minlength=4))
    np.testing.assert_array_equal(cm.sum(axis=0), np.bincount(p, minlength=4))


def test_confusion_matrix_length_mismatch():
    with pytest.raises(ValueError, match="6 targets but 5 predictions"):
        confusion_matrix(TARGETS, PREDICTIONS[:5])


def test_confusion_matrix_class_id_too_large_for_n_classes():
    with pytest.raises(ValueError, match="class id 2 .*n_classes=2"):
        confusion_matrix(TARGETS, PREDICTIONS, n_classes=2)


def test_confusion_matrix_rejects_non_integer_float_ids():
    with pytest.raises(ValueError, match="non-integer.*0.5"):
        confusion_matrix(np.array([0.0, 0.5, 1.0]), np.array([0, 0, 1]))


def test_confusion_matrix_rejects_negative_ids():
    with pytest.raises(ValueError, match="negative class id"):
        confusion_matrix(np.array([0, 1, 1]), np.array([0, -1, 1]))


# -- recall, precision, accuracy ---------------------------------------------------------------
def test_recall_and_precision_per_class():
    # recall = diagonal / row sum; precision = diagonal / column sum
    np.testing.assert_allclose(recall(EXPECTED), [1 / 3, 1 / 2, 1 / 1])
    np.testing.assert_allclose(precision(EXPECTED), [1 / 1, 1 / 3, 1 / 2])


def test_recall_and_precision_are_nan_for_an_empty_row_or_column():
    cm = np.array([[2, 1, 0],
                   [0, 0, 0],    # class 1 has no example: recall undefined
                   [1, 0, 0]])   # class 2 is never predicted: precision undefined
    r, p = recall(cm), precision(cm)
    np.testing.assert_allclose(r[[0, 2]], [2 / 3, 0.0])
    assert np.isnan(r[1])
    np.testing.assert_allclose(p[[0, 1]], [2 / 3, 0.0])
    assert np.isnan(p[2])


def test_accuracy_from_labels_and_from_confusion():
    assert accuracy(TARGETS, PREDICTIONS) == pytest.approx(3 / 6)
    assert accuracy_from_confusion(EXPECTED) == pytest.approx(3 / 6)
    assert accuracy(np.eye(3)[TARGETS], PREDICTIONS) == pytest.approx(3 / 6)
    assert accuracy(TARGETS, TARGETS) == 1.0


def test_accuracy_of_nothing_is_nan():
    assert np.isnan(accuracy(np.array([], dtype=int), np.array([], dtype=int)))
    assert np.isnan(accuracy_from_confusion(np.zeros((2, 2), dtype=int)))


def test_accuracy_length_mismatch():
    with pytest.raises(ValueError, match="accuracy"):
        accuracy(TARGETS, PREDICTIONS[:4])


# -- the printout ------------------------------------------------------------------------------
def test_format_confusion_layout():
    text = format_confusion(EXPECTED, ["star", "galaxy", "quasar"], title="test set")
    lines = text.splitlines()
    assert lines[0] == "test set"
    assert lines[1].split() == ["target", "\\", "predicted", "star", "galaxy", "quasar", "recall"]
    assert lines[2].split() == ["star", "1", "2", "0", "33.3", "%"]
    assert lines[3].split() == ["galaxy", "0", "1", "1", "50.0", "%"]
    assert lines[4].split() == ["quasar", "0", "0", "1", "100.0", "%"]
    assert lines[5].split() == ["precision", "100.0", "%", "33.3", "%", "50.0", "%"]
    assert lines[6] == "accuracy: 50.0 %  (3 / 6)"
    assert len(lines) == 7


def test_format_confusion_columns_line_up():
    lines = format_confusion(EXPECTED, ["star", "galaxy", "quasar"]).splitlines()
    header, rows = lines[0], lines[1:4]
    for name in ("star", "galaxy", "quasar"):
        end = header.index(name) + len(name)  # numbers are right-aligned under the name
        for row in rows:
            assert row[end - 1].isdigit() and row[end] == " "


def test_format_confusion_default_names_are_class_ids():
    header = format_confusion(EXPECTED).splitlines()[0]
    assert header.split()[3:] == ["0", "1", "2", "recall"]


def test_format_confusion_shows_a_dash_for_undefined_values():
    lines = format_confusion([[2, 0], [0, 0]], ["a", "b"]).splitlines()
    assert lines[2].split() == ["b", "0", "0", "-"]            # recall of b: no example
    assert lines[3].split() == ["precision", "100.0", "%", "-"]  # precision of b: never predicted


def test_format_confusion_wrong_number_of_class_names():
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        format_confusion(EXPECTED, ["star", "galaxy"])


def test_format_confusion_rejects_a_non_square_matrix():
    with pytest.raises(ValueError, match="square"):
        format_confusion(np.ones((2, 3), dtype=int))


def test_print_confusion_prints_the_formatted_text(capsys):
    nn.metrics.print_confusion(EXPECTED, ["a", "b", "c"])
    assert capsys.readouterr().out == format_confusion(EXPECTED, ["a", "b", "c"]) + "\n"


def test_module_doctest():
    result = doctest.testmod(nn.metrics)
    assert result.attempted > 0
    assert result.failed == 0
