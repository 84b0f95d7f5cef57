"""yProv4ML's ``wrappers.tracked_layers`` module: ``WeightDistributionTrackedModel`` (logd.api)."""

from ..api import WeightDistributionTrackedModel

__all__ = ["WeightDistributionTrackedModel"]
