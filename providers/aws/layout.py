"""Where the provider keeps its objects in the bucket, and the `s3://` uris naming them.

    s3://<bucket>/<prefix>/<stack>/
      datasets/<name>/<sha12>/data.<csv|parquet>
      code/<resource>/<digest>/sourcedir.tar.gz     entry scripts + settings
      training/<resource>/                          SageMaker output (model.tar.gz)
      evaluations/<model>/<digest>/evaluation.json  gate values from a processing job
      imported/<model>/<digest>/model.tar.gz        a model's `source:` file as an artifact
      capture/<endpoint>/                           captured endpoint traffic
      batch/<name>/<digest>/                        transform job output
"""

from __future__ import annotations

from urllib.parse import urlparse


class Layout:
    def __init__(self, bucket: str, prefix: str, stack: str):
        self.bucket = bucket
        self.root = "/".join(p for p in (prefix, stack) if p)

    def key(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def dataset_key(self, name: str, version: str, ext: str) -> str:
        return self.key("datasets", name, version, f"data.{ext}")

    def code_key(self, resource: str, digest: str) -> str:
        return self.key("code", resource, digest, "sourcedir.tar.gz")

    def training_output(self, resource: str) -> str:
        return self.uri(self.key("training", resource)) + "/"

    def evaluation_key(self, model: str, digest: str) -> str:
        return self.key("evaluations", model, digest, "evaluation.json")

    def imported_key(self, model: str, digest: str) -> str:
        return self.key("imported", model, digest, "model.tar.gz")

    def capture_uri(self, endpoint: str) -> str:
        return self.uri(self.key("capture", endpoint))

    def batch_output(self, name: str, digest: str) -> str:
        return self.uri(self.key("batch", name, digest)) + "/"


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an `s3://bucket/key` uri."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3 uri: '{uri}'")
    return parsed.netloc, parsed.path.lstrip("/")
