"""Where the provider keeps its objects in the bucket, and the `gs://` uris naming them.

    gs://<bucket>/<prefix>/<stack>/
      datasets/<name>/<sha12>/data.<csv|parquet>
      code/<resource>/<digest>/bundle.tar.gz        entry script, settings, mlform.ml
      training/<resource>/<job key>/model/          a custom job's AIP_MODEL_DIR: artifact,
                                                    metrics.json, holdout.csv
      training/<resource>/<job key>/progress.json   the running job's last epoch
      evaluations/<model>/<digest>/evaluation.json  gate values from an evaluation job
      requests/<endpoint>/<deployed model>/*.jsonl  the serving container's request log
      ground-truth/<endpoint>/*.jsonl               labels users upload for monitors
      batch/<name>/<digest>/                        batch prediction input and output
      monitors/<name>/evaluations/<time>.json, report.html
"""

from __future__ import annotations


class Layout:
    def __init__(self, bucket: str, prefix: str, stack: str):
        self.bucket = bucket
        self.root = "/".join(p for p in (prefix, stack) if p)

    def key(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket}/{key}"

    def dataset_key(self, name: str, version: str, ext: str) -> str:
        return self.key("datasets", name, version, f"data.{ext}")

    def code_key(self, resource: str, digest: str) -> str:
        return self.key("code", resource, digest, "bundle.tar.gz")

    def training_dir(self, resource: str, job_key: str) -> str:
        return self.key("training", resource, job_key)

    def evaluation_key(self, model: str, digest: str) -> str:
        return self.key("evaluations", model, digest, "evaluation.json")

    def requests_prefix(self, endpoint: str) -> str:
        return self.key("requests", endpoint) + "/"

    def ground_truth_prefix(self, endpoint: str) -> str:
        return self.key("ground-truth", endpoint) + "/"

    def batch_prefix(self, name: str, digest: str) -> str:
        return self.key("batch", name, digest) + "/"


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of a `gs://bucket/key` uri."""
    bucket, _, key = uri[5:].partition("/") if uri.startswith("gs://") else ("", "", "")
    if not bucket:
        raise ValueError(f"not a gs:// uri: '{uri}'")
    return bucket, key
