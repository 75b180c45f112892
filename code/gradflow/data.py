"""Data sets that need no download: scikit-learn's shipped 8x8 digits and synthetic tasks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import _args
from .core import default_device


@dataclass
class Dataset:
    """Train and test tensors. Inputs are float32, class labels int64 (regression: float32)."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            X = _args.tensor(f"X_{split}", getattr(self, f"X_{split}"), min_dim=1)
            y = _args.tensor(f"y_{split}", getattr(self, f"y_{split}"), min_dim=1)
            if X.shape[0] != y.shape[0]:
                raise ValueError(
                    f"X_{split} and y_{split} must have the same number of examples, "
                    f"got {X.shape[0]} and {y.shape[0]}"
                )
        if self.X_train.shape[1:] != self.X_test.shape[1:]:
            raise ValueError(
                f"train and test inputs must have the same shape per example, got "
                f"{tuple(self.X_train.shape[1:])} and {tuple(self.X_test.shape[1:])}"
            )

    def to(self, device: torch.device | str) -> Dataset:
        """The same data on ``device`` ("cpu", "cuda", a ``torch.device``)."""
        device = _args.device("device", device)
        return Dataset(*(t.to(device) for t in (self.X_train, self.y_train, self.X_test, self.y_test)))

    @property
    def in_features(self) -> int:
        return self.X_train.shape[1]


def digits(*, test_size: int = 450, split_seed: int = 0, device: torch.device | str | None = None) -> Dataset:
    """The 1,797 8x8 handwritten digits shipped with scikit-learn, as 64 standardized features.

    The split is fixed (stratified, ``split_seed`` 0: 1,347 train / 450 test) so every chapter
    sees the same data; features are standardized with the *training* mean and std (constant
    pixels keep std 1).

    Args:
        test_size: examples held out for testing (10 to 1,787: both sides need every class).
        split_seed: seed of the stratified split.
        device: where the tensors live; default the GPU if there is one.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    # a stratified split needs at least one example of each of the 10 classes on both sides
    test_size = _args.integer("test_size", test_size, minimum=10, maximum=1787)
    split_seed = _args.integer("split_seed", split_seed, minimum=0, maximum=2**32 - 1)
    if device is not None:
        device = _args.device("device", device)
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, random_state=split_seed, stratify=y)
    mean, std = X_tr.mean(axis=0), X_tr.std(axis=0)
    std[std == 0] = 1.0  # some border pixels are always 0
    as_x = lambda a: torch.tensor((a - mean) / std, dtype=torch.float32)
    as_y = lambda a: torch.tensor(a, dtype=torch.int64)
    data = Dataset(as_x(X_tr), as_y(y_tr), as_x(X_te), as_y(y_te))
    return data.to(device if device is not None else default_device())


def random_classification(
    n: int = 64, in_features: int = 32, classes: int = 2, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian inputs with random labels, the source material's favourite probe batch.

    There is nothing to learn here; it is for measuring gradients at initialisation.

    Args:
        n: batch size.
        in_features: input width.
        classes: number of labels (int64 targets in [0, classes)).
        seed: seed of a private generator (the global RNG is untouched).
    """
    n = _args.integer("n", n, minimum=1)
    in_features = _args.integer("in_features", in_features, minimum=1)
    classes = _args.integer("classes", classes, minimum=2)
    seed = _args.integer("seed", seed, minimum=0)
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, in_features, generator=g), torch.randint(0, classes, (n,), generator=g)


def teacher_regression(
    n: int = 1024,
    in_features: int = 16,
    *,
    hidden: int = 32,
    noise: float = 0.0,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> Dataset:
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
    n = _args.integer("n", n, minimum=4)
    in_features = _args.integer("in_features", in_features, minimum=1)
    hidden = _args.integer("hidden", hidden, minimum=1)
    noise = _args.real("noise", noise, minimum=0.0)
    test_fraction = _args.real("test_fraction", test_fraction, positive=True)
    seed = _args.integer("seed", seed, minimum=0)
    cut = int(round(n * (1 - test_fraction)))
    if not 1 <= cut <= n - 1:
        raise ValueError(
            f"test_fraction {test_fraction} leaves {cut} of n = {n} examples for "
            "training: both train and test sets need at least one"
        )
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, in_features, generator=g)
    W1 = torch.randn(in_features, hidden, generator=g) / np.sqrt(in_features)
    w2 = torch.randn(hidden, 1, generator=g) / np.sqrt(hidden)
    y = torch.tanh(X @ W1) @ w2 + noise * torch.randn(n, 1, generator=g)  # (n, 1)
    return Dataset(X[:cut], y[:cut], X[cut:], y[cut:])


def adding_problem(n: int = 1000, length: int = 50, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem (Hochreiter & Schmidhuber 1997): a sequence of (value, marker) pairs;
    the target is the sum of the two values whose marker is 1, one in each half of the sequence.

    Args:
        n: number of sequences (>= 1).
        length: time steps per sequence (>= 2: one marker in each half).
        seed: seed of a private generator.

    Returns:
        x of shape (n, length, 2) and y of shape (n, 1).
    """
    n = _args.integer("n", n, minimum=1)
    length = _args.integer("length", length, minimum=2)
    seed = _args.integer("seed", seed, minimum=0)
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
