"""yProv4ML's ``wrappers`` modules under logd's name, so ``from prov4ml.wrappers.<m> import X``
works with the package renamed (``from logd.wrappers.<m> import X``)."""

from ..api import ProvenanceTrackedFunction, ProvenanceTrackedModel, WeightDistributionTrackedModel
from .indexed_dataset import IndexedDatasetWrapper

__all__ = ["IndexedDatasetWrapper", "ProvenanceTrackedFunction", "ProvenanceTrackedModel",
           "WeightDistributionTrackedModel"]
