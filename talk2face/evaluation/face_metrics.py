"""Metrics on faces and face labels: age, attributes, Fréchet distance, diversity and edits.

Label arrays use one convention throughout: attributes as an int array (N, A) with 1 = present,
0 = absent and -1 = unknown (a source that does not label it); unknown entries are skipped.
Images are float tensors or arrays in [-1, 1], shape (N, 3, H, W); pixel distances are reported
on the [0, 1] intensity scale (mean absolute difference per channel value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

Box = tuple[int, int, int, int]  # (left, top, right, bottom) in pixels, right/bottom exclusive


def labels_matrix(labels: Sequence[Mapping[str, bool] | None], names: Sequence[str]) -> np.ndarray:
    """Attribute dicts -> (N, A) int8 array with 1/0 and -1 where a label is unknown.

    Args:
        labels: per face, attribute name -> bool (or None when the face has no attribute labels).
        names: the attribute order of the columns.

    Returns:
        (N, A) int8.
    """
    out = np.full((len(labels), len(names)), -1, dtype=np.int8)
    for i, row in enumerate(labels):
        for j, name in enumerate(names):
            if row is not None and name in row:
                out[i, j] = int(bool(row[name]))
    return out


def age_mae(predicted: Sequence[float], true: Sequence[float]) -> float:
    """Mean absolute age error in years."""
    p, t = np.asarray(predicted, dtype=np.float64), np.asarray(true, dtype=np.float64)
    return float(np.abs(p - t).mean())


def cumulative_score(predicted: Sequence[float], true: Sequence[float], years: float = 5.0) -> float:
    """CS@years: the share of faces whose age error is at most `years` (CS@5 by default)."""
    p, t = np.asarray(predicted, dtype=np.float64), np.asarray(true, dtype=np.float64)
    return float((np.abs(p - t) <= years).mean())


def per_attribute_accuracy(predicted: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Accuracy of each attribute over the faces where its label is known.

    Args:
        predicted: (N, A) bool or 0/1 predictions.
        truth: (N, A) int with 1/0, -1 = unknown.
        names: the A attribute names.

    Returns:
        name -> accuracy, for the attributes with at least one known label.
    """
    predicted, truth = np.asarray(predicted).astype(np.int8), np.asarray(truth)
    out = {}
    for j, name in enumerate(names):
        known = truth[:, j] >= 0  # (N,)
        if known.any():
            out[name] = float((predicted[known, j] == truth[known, j]).mean())
    return out


def mean_accuracy(predicted: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> float:
    """Mean over attributes of per-attribute accuracy (unknown labels skipped)."""
    accuracies = per_attribute_accuracy(predicted, truth, names)
    return float(np.mean(list(accuracies.values()))) if accuracies else float("nan")


def per_attribute_balanced_accuracy(
    predicted: np.ndarray, truth: np.ndarray, names: Sequence[str]
) -> dict[str, float]:
    """(TPR + TNR) / 2 per attribute; where only one class occurs, that class's rate alone.

    Args:
        predicted: (N, A) bool or 0/1 predictions.
        truth: (N, A) int with 1/0, -1 = unknown.
        names: the A attribute names.

    Returns:
        name -> balanced accuracy, for the attributes with at least one known label.
    """
    predicted, truth = np.asarray(predicted).astype(np.int8), np.asarray(truth)
    out = {}
    for j, name in enumerate(names):
        rates = [
            float((predicted[truth[:, j] == cls, j] == cls).mean())
            for cls in (1, 0)
            if (truth[:, j] == cls).any()
        ]
        if rates:
            out[name] = float(np.mean(rates))
    return out


def balanced_accuracy(predicted: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> float:
    """Mean over attributes of (TPR + TNR) / 2: a constant predictor scores 0.5."""
    scores = per_attribute_balanced_accuracy(predicted, truth, names)
    return float(np.mean(list(scores.values()))) if scores else float("nan")


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigen-decomposition)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance_from_stats(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2).

    d^2 = |mu1 - mu2|^2 + Tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2). Writing the cross term with the
    symmetric matrix C1^1/2 C2 C1^1/2 (same eigenvalues as C1 C2) keeps every square root of a
    symmetric PSD matrix, so no complex parts appear (unlike scipy.linalg.sqrtm(C1 @ C2)).

    Args:
        mu1, mu2: (D,) means. cov1, cov2: (D, D) covariances.

    Returns:
        the squared Fréchet distance (what FID reports).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    root1 = _sqrt_psd(cov1)  # (D, D)
    cross = root1 @ cov2 @ root1  # (D, D), symmetric PSD
    cross_eig = np.clip(np.linalg.eigvalsh((cross + cross.T) / 2), 0, None)
    value = ((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.sqrt(cross_eig).sum()
    return float(max(value, 0.0))


def frechet_distance(features_a: np.ndarray | torch.Tensor, features_b: np.ndarray | torch.Tensor) -> float:
    """Fréchet distance between two feature sets (e.g. evaluator features of real vs generated).

    Args:
        features_a: (N, D). features_b: (M, D); N, M >= 2.

    Returns:
        the squared Fréchet distance of Gaussians fitted to each set.
    """
    a, b = _numpy(features_a), _numpy(features_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"need two (N>=2, D) feature sets of one width, got {a.shape} and {b.shape}")
    return frechet_distance_from_stats(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def _numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def mean_pairwise_distance(x: np.ndarray | torch.Tensor) -> float:
    """Mean L2 distance over all pairs i < j of the rows of x (flattened), 0 for one row."""
    flat = _numpy(x).reshape(len(x), -1)  # (K, F)
    if len(flat) < 2:
        return 0.0
    sq = (flat**2).sum(1)
    dist = np.sqrt(np.clip(sq[:, None] + sq[None, :] - 2 * flat @ flat.T, 0, None))  # (K, K)
    return float(dist[np.triu_indices(len(flat), 1)].mean())


def pixel_distance(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, keep: np.ndarray | None = None) -> float:
    """Mean absolute pixel difference on the [0, 1] scale, optionally only where `keep` is True.

    Args:
        a, b: images in [-1, 1], (3, H, W) or (N, 3, H, W).
        keep: optional (H, W) bool mask of the pixels to compare.

    Returns:
        the mean |a - b| / 2 over the kept pixels and channels.
    """
    diff = np.abs(_numpy(a) - _numpy(b)) / 2  # [-1, 1] -> [0, 1] scale
    if keep is None:
        return float(diff.mean())
    keep = np.broadcast_to(np.asarray(keep, bool), diff.shape)
    return float(diff[keep].mean()) if keep.any() else 0.0


def diversity(features: np.ndarray | torch.Tensor, images: np.ndarray | torch.Tensor) -> dict[str, float]:
    """Diversity of the K samples generated for one prompt.

    Args:
        features: (K, D) evaluator features of the samples.
        images: (K, 3, H, W) the samples in [-1, 1].

    Returns:
        {"feature_l2": mean pairwise L2 in feature space,
         "pixel_l1": mean pairwise pixel distance on the [0, 1] scale}.
    """
    imgs = _numpy(images)
    pairs = [(i, j) for i in range(len(imgs)) for j in range(i + 1, len(imgs))]
    pixel = float(np.mean([pixel_distance(imgs[i], imgs[j]) for i, j in pairs])) if pairs else 0.0
    return {"feature_l2": mean_pairwise_distance(features), "pixel_l1": pixel}


def box_mask(box: Box, height: int, width: int) -> np.ndarray:
    """(H, W) bool mask, True inside the box (left, top, right, bottom; right/bottom exclusive)."""
    left, top, right, bottom = box
    mask = np.zeros((height, width), dtype=bool)
    mask[max(top, 0) : max(bottom, 0), max(left, 0) : max(right, 0)] = True
    return mask


# an edit "preserves" the face when the evaluator finds at least this share of the other
# attributes unchanged: the preservation the make-demo target asks of the mean
PRESERVING = 0.9


def edit_scores(
    names: Sequence[str],
    requested: Sequence[tuple[str, bool | int]],
    source_attrs: np.ndarray,
    edited_attrs: np.ndarray,
    edited_ages: Sequence[float],
    source_images: np.ndarray | torch.Tensor,
    edited_images: np.ndarray | torch.Tensor,
    regions: Sequence[np.ndarray | Box | None],
    age_tolerance: float = 5.0,
) -> dict[str, float]:
    """How well edits did what was asked and kept everything else.

    Preservation compares the evaluator's verdict on the edited face with its verdict on the
    SOURCE face (not with ground truth), so evaluator mistakes shared by both images cancel.

    Args:
        names: the A attribute names of the attribute columns.
        requested: per edit, (attribute name or "age", the requested value: bool or target age).
        source_attrs: (N, A) evaluator predictions (bool) on the source faces.
        edited_attrs: (N, A) evaluator predictions (bool) on the edited faces.
        edited_ages: (N,) evaluator age of the edited faces.
        source_images, edited_images: (N, 3, H, W) in [-1, 1].
        regions: per edit, the region the edit may change: an (H, W) bool mask, a Box, or None
            (then the whole image counts as outside).
        age_tolerance: an age edit succeeds when the edited face is judged within this many
            years of the target age.

    Returns:
        {"success": share of edits showing the requested change,
         "preservation": mean over edits of the share of other attributes unchanged,
         "success and preserving": share of edits that succeed with >= PRESERVING of the others kept,
         "pixel_outside": mean pixel distance to the source outside the region ([0, 1] scale)}.
    """
    src, dst = np.asarray(source_attrs, bool), np.asarray(edited_attrs, bool)
    src_img, dst_img = _numpy(source_images), _numpy(edited_images)
    if not (len(requested) == len(src) == len(dst) == len(edited_ages) == len(src_img) == len(dst_img) == len(regions)):
        raise ValueError("edit_scores: every per-edit argument must have the same length")
    index = {name: j for j, name in enumerate(names)}
    success, preserved, outside = [], [], []
    height, width = src_img.shape[-2:]
    for i, (attribute, value) in enumerate(requested):
        if attribute == "age":
            success.append(abs(float(edited_ages[i]) - float(value)) <= age_tolerance)
            others = np.ones(len(names), bool)
        else:
            if attribute not in index:
                raise ValueError(f"edit {i}: attribute {attribute!r} is not among the evaluator's {list(names)}")
            success.append(bool(dst[i, index[attribute]]) == bool(value))
            others = np.arange(len(names)) != index[attribute]
        preserved.append(float((src[i, others] == dst[i, others]).mean()))
        region = regions[i]
        if region is None:
            changed = np.zeros((height, width), bool)
        elif isinstance(region, tuple):
            changed = box_mask(region, height, width)
        else:
            changed = np.asarray(region, bool)
        outside.append(pixel_distance(src_img[i], dst_img[i], keep=~changed))
    return {
        "success": float(np.mean(success)),
        "preservation": float(np.mean(preserved)),
        "success and preserving": float(np.mean(np.array(success) & (np.array(preserved) >= PRESERVING))),
        "pixel_outside": float(np.mean(outside)),
    }
