"""yProv4ML's ``wrappers.tracked_model`` module: ``ProvenanceTrackedModel`` (logd.api)."""

from ..api import ProvenanceTrackedModel

__all__ = ["ProvenanceTrackedModel"]
