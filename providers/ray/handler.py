"""Base of the ray provider's handlers: the context, plus the cluster connection."""

from __future__ import annotations

from mlform.engine.dispatch import ResourceHandler
from mlform.engine.provider import ProviderContext

from .cluster import Cluster
from .paths import RayPaths


class RayHandler(ResourceHandler):
    """A handler for one resource type, holding the cluster connection it shares with the
    provider's other handlers (`self.cluster.jobs`, `self.cluster.storage`,
    `self.cluster.cfg`) and the stack's folder on the shared storage (`self.paths`)."""

    def __init__(self, ctx: ProviderContext, cluster: Cluster):
        super().__init__(ctx)
        self.cluster = cluster
        self.paths = RayPaths(cluster.storage / ctx.stack)
