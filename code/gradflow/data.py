"""Data sets that need no download: scikit-learn's shipped 8x8 digits and synthetic tasks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .core import default_device


@dataclass
class Dataset:
    """Train and test tensors. Inputs are float32, class labels int64 (regression: float32)."""
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor

    def to(self, device: torch.device | str) -> "Dataset":
        return Dataset(*(t.to(device) for t in (self.X_train, self.y_train, self.X_test, self.y_test)))

    @property
    def in_features(self) -> int:
        return self.X_train.shape[1]


def digits(*, test_size: int = 450, split_seed: int = 0,
           device: torch.device | str | None = None) -> Dataset:
    """The 1,797 8x8 handwritten digits shipped with scikit-learn, as 64 standardized features.

    The split is fixed (stratified, ``split_seed`` 0: 1,347 train / 450 test) so every chapter
    sees the same data; features are standardized with the *training* mean and std (constant
    pixels keep std 1).

    Args:
        test_size: examples held out for testing (1 to 1,796).
        split_seed: seed of the stratified split.
        device: where the tensors live; default the GPU if there is one.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 1 <= test_size <= 1796:
        raise ValueError(f"test_size must be between 1 and 1796, got {test_size}")
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, random_state=split_seed,
                                              stratify=y)
    mean, std = X_tr.mean(axis=0), X_tr.std(axis=0)
    std[std == 0] = 1.0  # some border pixels are always 0
    as_x = lambda a: torch.tensor((a - mean) / std, dtype=torch.float32)
    as_y = lambda a: torch.tensor(a, dtype=torch.int64)
    data = Dataset(as_x(X_tr), as_y(y_tr), as_x(X_te), as_y(y_te))
    return data.to(device if device is not None else default_device())


def random_classification(n: int = 64, in_features: int = 32, classes: int = 2, *,
                          seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian inputs with random labels, the source material's favourite probe batch.

    There is nothing to learn here; it is for measuring gradients at initialisation.

    Args:
        n: batch size.
        in_features: input width.
        classes: number of labels (int64 targets in [0, classes)).
        seed: seed of a private generator (the global RNG is untouched).
    """
    if n < 1 or in_features < 1 or classes < 2:
        raise ValueError(f"need n >= 1, in_features >= 1, classes >= 2; got {n}, {in_features}, {classes}")
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, in_features, generator=g), torch.randint(0, classes, (n,), generator=g)


def teacher_regression(n: int = 1024, in_features: int = 16, *, hidden: int = 32,
                       noise: float = 0.0, test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """Targets made by a random one-hidden-layer tanh "teacher" network: a task a student can
    fit exactly, so any failure to learn is the optimiser's, not the data's.

    Args:
        n: number of examples (>= 4).
        in_features: input width.
        hidden: the teacher's hidden width.
        noise: std of Gaussian noise added to the targets.
        test_fraction: share of examples held out.
        seed: seed of a private generator.
    """
    if n < 4 or not 0 < test_fraction < 1:
        raise ValueError(f"need n >= 4 and 0 < test_fraction < 1, got {n}, {test_fraction}")
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, in_features, generator=g)
    W1 = torch.randn(in_features, hidden, generator=g) / np.sqrt(in_features)
    w2 = torch.randn(hidden, 1, generator=g) / np.sqrt(hidden)
    y = torch.tanh(X @ W1) @ w2 + noise * torch.randn(n, 1, generator=g)  # (n, 1)
    cut = int(round(n * (1 - test_fraction)))
    return Dataset(X[:cut], y[:cut], X[cut:], y[cut:])


def adding_problem(n: int = 1000, length: int = 50, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem (Hochreiter & Schmidhuber 1997): a sequence of (value, marker) pairs;
    the target is the sum of the two values whose marker is 1, one in each half of the sequence.

    Returns:
        x of shape (n, length, 2) and y of shape (n, 1).
    """
    if n < 1 or length < 2:
        raise ValueError(f"need n >= 1 and length >= 2, got {n}, {length}")
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(n, length, generator=g)
    first = torch.randint(0, length // 2, (n,), generator=g)
    second = torch.randint(length // 2, length, (n,), generator=g)
    markers = torch.zeros(n, length)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)  # (n, length, 2)
    y = (values * markers).sum(dim=1, keepdim=True)  # (n, 1)
    return x, y
