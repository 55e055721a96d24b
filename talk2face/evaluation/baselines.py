"""Reference points for every number in the report: what a model that ignores the face scores.

- attributes: the majority value of each attribute on the training split;
- age: the mean training age;
- captioning: the first caption of the training face nearest in evaluator feature space
  (a retrieval baseline: fluent, on-topic, and right only as far as the neighbour looks alike).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class MajorityAttributes:
    """Predicts, for every face, each attribute's most frequent training value."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.majority = np.zeros(len(self.names), dtype=bool)

    def fit(self, truth: np.ndarray) -> MajorityAttributes:
        """Args: truth: (N, A) training labels with 1/0, -1 = unknown (ignored)."""
        truth = np.asarray(truth)
        positives = (truth == 1).sum(0)  # (A,)
        negatives = (truth == 0).sum(0)  # (A,)
        self.majority = positives > negatives
        return self

    def predict(self, n: int) -> np.ndarray:
        """(n, A) bool: the majority values repeated for n faces."""
        return np.repeat(self.majority[None, :], n, axis=0)


class MeanAge:
    """Predicts the mean training age for every face."""

    def __init__(self) -> None:
        self.mean = float("nan")

    def fit(self, ages: Sequence[float]) -> MeanAge:
        """Args: ages: training ages in years (unknown ages must be left out)."""
        ages = np.asarray(ages, dtype=np.float64)
        if len(ages) == 0:
            raise ValueError("MeanAge.fit: no training ages")
        self.mean = float(ages.mean())
        return self

    def predict(self, n: int) -> np.ndarray:
        """(n,) float: the mean age repeated."""
        return np.full(n, self.mean)


class NearestNeighbourCaption:
    """Captions a face with the first caption of its nearest training face (evaluator features)."""

    def __init__(self) -> None:
        self.features = torch.empty(0)
        self.captions: list[str] = []

    def fit(self, features: torch.Tensor, captions: Sequence[Sequence[str]]) -> NearestNeighbourCaption:
        """Remember the training faces.

        Args:
            features: (N, D) evaluator features of the training faces.
            captions: per training face, its captions (faces without captions are skipped).
        """
        if len(features) != len(captions):
            raise ValueError(f"{len(features)} feature rows but {len(captions)} caption lists")
        keep = [i for i, caps in enumerate(captions) if caps]
        if not keep:
            raise ValueError("NearestNeighbourCaption.fit: no training face has a caption")
        self.features = features[keep].float()  # (N', D)
        self.captions = [captions[i][0] for i in keep]
        return self

    def predict(self, features: torch.Tensor, batch_size: int = 1024) -> list[str]:
        """The neighbour's first caption for each query face.

        Args:
            features: (M, D) evaluator features of the faces to caption.
            batch_size: queries per distance matrix.

        Returns:
            M captions.
        """
        out: list[str] = []
        for chunk in features.float().split(batch_size):
            nearest = torch.cdist(chunk, self.features).argmin(dim=1)  # (m,)
            out += [self.captions[i] for i in nearest.tolist()]
        return out
