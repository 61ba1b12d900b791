"""A loopback fake of the Vertex AI REST API (v1) for the gcp provider's tests; its contract
(what it models and what it does not) is README.md beside this file."""

from .fake import VertexFake, start_vertex_fake

__all__ = ["VertexFake", "start_vertex_fake"]
