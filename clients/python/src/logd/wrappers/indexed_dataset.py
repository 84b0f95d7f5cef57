"""yProv4ML's ``IndexedDatasetWrapper``: each item comes with its index, ``(index, item)``."""

from typing import Any, Tuple


class IndexedDatasetWrapper:
    """A map-style data set (what ``DataLoader`` takes) whose items are ``(index, item)``."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: Any) -> Tuple[Any, Any]:
        return index, self.dataset[index]
