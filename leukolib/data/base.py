"""The dataset interface shared by the real and the synthetic datasets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from leukolib.data.sample import Sample

__all__ = ["Dataset", "Subset"]


class Dataset(Sequence[Sample]):
    """A read-only, indexable collection of :class:`Sample`.

    Subclasses set :attr:`name`, :attr:`class_names`, :attr:`has_masks` and
    implement :meth:`__len__`, :meth:`_load` and :attr:`ids` /
    :attr:`labels` (which must not decode any image, so that splits and class
    balance are cheap).
    """

    name: str = "dataset"
    class_names: tuple[str, ...] = ()
    has_masks: bool = True

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def ids(self) -> list[str]:  # pragma: no cover - abstract
        """Sample identifiers, in index order."""
        raise NotImplementedError

    @property
    def labels(self) -> np.ndarray | None:
        """Class index of every sample (int array), or ``None`` if unlabelled."""
        return None

    @property
    def groups(self) -> list[str] | None:
        """Patient or smear identifier of every sample, when the dataset has them.

        Splits keep a group on one side (:mod:`leukolib.folds`); ``None``
        (the default) means every image is its own group, duplicates aside.
        """
        return None

    def _load(self, index: int) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("slice a Dataset with leukolib.data.Subset(dataset, indices)")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {self.name} with {n} samples")
        return self._load(index % n)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self._load(i)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {len(self)} samples>"


class Subset(Dataset):
    """A view of some samples of another dataset, in the given order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        self.name = dataset.name
        self.class_names = dataset.class_names
        self.has_masks = dataset.has_masks

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def ids(self) -> list[str]:
        """Sample identifiers, in index order."""
        ids = self.dataset.ids
        return [ids[i] for i in self.indices]

    @property
    def labels(self) -> np.ndarray | None:
        """Class index of every sample, or ``None`` when unlabelled."""
        labels = self.dataset.labels
        return None if labels is None else labels[self.indices]

    @property
    def groups(self) -> list[str] | None:
        """Group of every sample, or ``None``."""
        groups = self.dataset.groups
        return None if groups is None else [groups[i] for i in self.indices]

    def _load(self, index: int) -> Sample:
        return self.dataset[self.indices[index]]
