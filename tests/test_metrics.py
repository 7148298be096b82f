"""Test-set metrics on hand-made predictions (no training)."""

from __future__ import annotations

import json
import math

import pytest

from weak_to_strong.metrics import (agreement, auroc, base_rate_shift, ece, log_loss, predicted_class, prior_shift,
                                   summary_metrics)


def test_auroc_counts_ranked_pairs_and_ties_as_half():
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)  # 3 of 4 pairs ranked right
    assert auroc([0.5, 0.5, 0.5, 0.9], [0, 1, 0, 1]) == pytest.approx(0.75)  # 0.9 beats both; 0.5 ties both
    assert auroc([0.2, 0.9], [0, 1]) == 1.0 and auroc([0.9, 0.2], [0, 1]) == 0.0
    assert auroc([0.2, 0.2, 0.2], [0, 1, 1]) == 0.5  # a constant prediction ranks nothing
    assert math.isnan(auroc([0.2, 0.9], [1, 1]))  # one class: undefined


def test_auroc_ignores_the_threshold_that_accuracy_uses():
    # Every prediction below 0.5: accuracy is that of "always 0", yet the ranking is perfect.
    assert auroc([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]) == 1.0


def test_ece_bins_the_predicted_class_confidence_in_ten_equal_bins():
    # conf 0.95 right (bin 9), 0.85 wrong (bin 8), 0.75 right (bin 7), 0.62 wrong (bin 6): one per bin.
    assert ece([0.95, 0.85, 0.25, 0.62], [1, 0, 0, 0]) == pytest.approx((0.05 + 0.85 + 0.25 + 0.62) / 4)
    # Two in one bin are averaged before the gap is taken: |0.5 - 0.95|, not the mean of |1 - 0.91| and |0 - 0.99|.
    assert ece([0.91, 0.99], [1, 0]) == pytest.approx(0.45)
    assert ece([0.91, 0.99], [1, 0], n_bins=20) == pytest.approx((0.09 + 0.99) / 2)
    assert ece([0.7] * 10, [1] * 7 + [0] * 3) == pytest.approx(0.0, abs=1e-12)  # calibrated
    assert ece([1.0, 0.0], [1, 0]) == 0.0  # confidence 1.0 falls in the last bin
    assert math.isnan(ece([], []))


def test_log_loss_is_the_mean_cross_entropy_and_tells_an_unmoved_head_from_a_fitted_one():
    labels = [1, 0, 1, 0]
    unmoved = [0.5001, 0.4999, 0.5001, 0.4999]  # accuracy 1.0, as a fitted head's
    fitted = [0.9, 0.2, 0.8, 0.1]
    assert log_loss(unmoved, labels) == pytest.approx(math.log(2), abs=1e-3)
    assert log_loss(fitted, labels) == pytest.approx(-(math.log(0.9) + math.log(0.8) * 2 + math.log(0.9)) / 4)
    assert log_loss([1.0], [0]) == pytest.approx(-math.log(1e-12))  # clipped: finite
    assert math.isnan(log_loss([], []))


def test_base_rate_shift_is_the_predicted_minus_the_true_share_of_class_one():
    labels = [1, 1, 0, 0]
    assert base_rate_shift([0.9, 0.8, 0.2, 0.1], labels) == 0.0  # right everywhere
    assert base_rate_shift([0.9, 0.2, 0.8, 0.1], labels) == 0.0  # two errors that cancel: no shift
    assert base_rate_shift([0.51, 0.52, 0.53, 0.1], labels) == pytest.approx(0.25)  # tiny logits, one side
    assert base_rate_shift([0.5, 0.4, 0.3, 0.1], labels) == pytest.approx(-0.5)  # a tie says 0
    assert math.isnan(base_rate_shift([], []))


def test_prior_shift_is_the_mean_probability_minus_the_true_share_of_class_one():
    labels = [1, 1, 0, 0]
    assert prior_shift([0.9, 0.8, 0.2, 0.1], labels) == pytest.approx(0.0)
    assert prior_shift([0.51, 0.52, 0.53, 0.1], labels) == pytest.approx(-0.085)  # base rate +0.25: the signs differ
    assert prior_shift([1.0, 1.0, 1.0, 0.6], labels) == pytest.approx(0.4)
    assert math.isnan(prior_shift([], []))


def test_a_tie_predicts_class_zero_as_accuracy_does():
    assert predicted_class(0.5) == 0 and predicted_class(0.5000001) == 1
    assert ece([0.5], [0]) == pytest.approx(0.5)  # class 0 at confidence 0.5, right


WEAK = {"id": [0, 1, 2, 3], "prob": [0.9, 0.8, 0.3, 0.6], "label": [1, 0, 1, 0]}  # says 1, 1, 0, 1: wrong on 1, 2, 3


def test_agreement_overall_and_on_the_weak_models_errors_matched_by_id():
    # The student says 0 on id 0 (weak: 1), repeats the error on 1, corrects 2 and 3.
    student = {"id": [3, 2, 1, 0], "prob": [0.2, 0.7, 0.9, 0.1], "label": [0, 1, 0, 1]}
    assert agreement(WEAK, student) == {"agreement": pytest.approx(1 / 4),
                                        "agreement_on_weak_errors": pytest.approx(1 / 3)}
    # Documents only one of them has (another model's max_ctx filter) are left out.
    fewer = {"id": [1, 0], "prob": [0.9, 0.95], "label": [0, 1]}
    assert agreement(WEAK, fewer) == {"agreement": 1.0, "agreement_on_weak_errors": 1.0}
    none_shared = agreement(WEAK, {"id": [9], "prob": [0.9], "label": [1]})
    assert math.isnan(none_shared["agreement"]) and math.isnan(none_shared["agreement_on_weak_errors"])


def test_summary_metrics_leave_out_what_is_undefined_and_are_valid_json():
    student = {"id": [0, 1, 2, 3], "prob": [0.8, 0.9, 0.2, 0.4], "label": [1, 0, 1, 0]}
    ground_truth = summary_metrics(student)
    assert set(ground_truth) == {"auroc", "ece", "log_loss"}
    assert ground_truth["auroc"] == pytest.approx(auroc(student["prob"], student["label"]))
    transfer = summary_metrics(student, WEAK)
    assert set(transfer) == {"auroc", "ece", "log_loss", "agreement", "agreement_on_weak_errors"}
    assert transfer["agreement_on_weak_errors"] == pytest.approx(2 / 3)  # repeats the errors on ids 1 and 2, corrects 3
    one_class = summary_metrics({"id": [0, 1], "prob": [0.8, 0.3], "label": [1, 1]})
    assert set(one_class) == {"ece", "log_loss"}
    json.dumps(transfer, allow_nan=False)
