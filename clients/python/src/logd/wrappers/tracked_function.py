"""yProv4ML's ``wrappers.tracked_function`` module: ``ProvenanceTrackedFunction`` (logd.api)."""

from ..api import ProvenanceTrackedFunction

__all__ = ["ProvenanceTrackedFunction"]
