"""Face metrics on cases whose answer is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talk2face.evaluation import face_metrics as fm
from talk2face.evaluation.baselines import MajorityAttributes, MeanAge, NearestNeighbourCaption


def test_age_mae_and_cs5():
    true = [10, 20, 30, 40]
    pred = [12, 26, 30, 35]  # errors 2, 6, 0, 5
    assert fm.age_mae(pred, true) == pytest.approx(13 / 4)
    assert fm.cumulative_score(pred, true) == pytest.approx(3 / 4)  # 5 counts as within 5
    assert fm.cumulative_score(pred, true, years=1) == pytest.approx(1 / 4)


def test_accuracies_skip_unknown_and_balance_classes():
    names = ["A", "B"]
    truth = np.array([[1, 0], [1, -1], [1, 0], [0, 1]])
    pred = np.array([[1, 0], [0, 1], [1, 0], [1, 0]])
    per = fm.per_attribute_accuracy(pred, truth, names)
    assert per == {"A": pytest.approx(2 / 4), "B": pytest.approx(2 / 3)}  # B's unknown row skipped
    assert fm.mean_accuracy(pred, truth, names) == pytest.approx((0.5 + 2 / 3) / 2)
    # A: TPR 2/3, TNR 0/1 -> 1/3 ; B: TPR 0/1, TNR 2/2 -> 1/2
    balanced = fm.per_attribute_balanced_accuracy(pred, truth, names)
    assert balanced == {"A": pytest.approx(1 / 3), "B": pytest.approx(0.5)}
    assert fm.balanced_accuracy(pred, truth, names) == pytest.approx((1 / 3 + 0.5) / 2)
    # a constant predictor gets 0.5 balanced accuracy however skewed the labels
    skewed = np.array([[1], [1], [1], [0]])
    assert fm.balanced_accuracy(np.ones((4, 1)), skewed, ["A"]) == pytest.approx(0.5)


def test_labels_matrix_marks_unknown():
    m = fm.labels_matrix([{"A": True}, None, {"B": False, "A": False}], ["A", "B"])
    assert m.tolist() == [[1, -1], [-1, -1], [0, 0]]


def test_frechet_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    c1, c2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 1.0])
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2 = 5 + (1 + 1 + 4)
    assert fm.frechet_distance_from_stats(mu1, c1, mu2, c2) == pytest.approx(11.0, abs=1e-9)
    # rotating both Gaussians does not change the distance
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    assert fm.frechet_distance_from_stats(q @ mu1, q @ c1 @ q.T, q @ mu2, q @ c2 @ q.T) == pytest.approx(11.0, abs=1e-8)


def test_frechet_of_samples():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 4))
    assert fm.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    shifted = rng.normal(size=(4000, 4)) + np.array([2.0, 0, 0, 0])
    assert fm.frechet_distance(a, shifted) == pytest.approx(4.0, abs=0.3)
    assert fm.frechet_distance(torch.from_numpy(a), torch.from_numpy(shifted)) == pytest.approx(fm.frechet_distance(a, shifted))
    with pytest.raises(ValueError):
        fm.frechet_distance(a[:, :3], a)


def test_diversity_and_pixel_distance():
    feats = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    assert fm.mean_pairwise_distance(feats) == pytest.approx((5 + 0 + 5) / 3)
    images = -torch.ones(2, 3, 4, 4)
    images[1] = 1.0  # black vs white: pixel distance 1 on the [0, 1] scale
    out = fm.diversity(feats[:2], images)
    assert out == {"feature_l2": pytest.approx(5.0), "pixel_l1": pytest.approx(1.0)}
    assert fm.diversity(feats[:1], images[:1]) == {"feature_l2": 0.0, "pixel_l1": 0.0}


def test_edit_scores():
    names = ["Smiling", "Eyeglasses", "Male"]
    src_attr = np.array([[0, 0, 1], [1, 0, 0], [0, 0, 0]], bool)
    dst_attr = np.array([[1, 0, 1], [1, 1, 1], [0, 0, 0]], bool)
    src = torch.zeros(3, 3, 8, 8)
    dst = src.clone()
    dst[0, :, 0:4, 0:4] = 1.0  # change inside the box only
    dst[1] = 1.0  # change everywhere
    result = fm.edit_scores(
        names,
        requested=[("Smiling", True), ("Eyeglasses", True), ("age", 60)],
        source_attrs=src_attr, edited_attrs=dst_attr, edited_ages=[30, 30, 57],
        source_images=src, edited_images=dst,
        regions=[(0, 0, 4, 4), fm.box_mask((0, 0, 8, 4), 8, 8), None],
    )
    assert result["success"] == pytest.approx(1.0)  # smile on, glasses on, age within 5 of 60
    # preserved: edit 0 -> 2/2, edit 1 -> Smiling kept, Male flipped -> 1/2, edit 2 -> 3/3
    assert result["preservation"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert result["success and preserving"] == pytest.approx(2 / 3)  # edit 1 kept only half of the others
    # outside the region: edit 0 untouched, edit 1 all changed by 1/2 -> 0.5, edit 2 nothing
    assert result["pixel_outside"] == pytest.approx((0 + 0.5 + 0) / 3)


def test_baselines():
    truth = np.array([[1, 0], [1, 1], [0, 0], [-1, 0]])
    majority = MajorityAttributes(["A", "B"]).fit(truth)
    assert majority.predict(2).tolist() == [[True, False], [True, False]]
    assert MeanAge().fit([10, 20, 60]).predict(2).tolist() == [30.0, 30.0]
    nn_caption = NearestNeighbourCaption().fit(
        torch.tensor([[0.0, 0.0], [10.0, 0.0], [5.0, 5.0]]), [["at zero", "origin"], ["at ten"], []]
    )
    assert nn_caption.predict(torch.tensor([[9.0, 1.0], [1.0, 0.0], [6.0, 6.0]])) == ["at ten", "at zero", "at ten"]
