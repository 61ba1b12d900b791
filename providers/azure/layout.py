"""Where the provider keeps its blobs in the container, and the uris naming them.

    <container>/<prefix>/<stack>/
      datasets/<name>/<sha12>/data.<csv|parquet>
      code/<resource>/<digest>/                    a code asset's folder: entry script,
                                                   mlform_job.json, mlform.ml
      training/<resource>/<job name>/model/        a command job's `model` output: artifact,
                                                   metrics.json, holdout.csv, run.json
      evaluations/<model>/<digest>/evaluation.json gate values from an evaluation job
      requests/<endpoint>/<deployment>/*.jsonl     the scoring script's request log
      ground-truth/<endpoint>/*.jsonl              labels users upload for monitors
      batch/<name>/<digest>/                       batch scoring input and output
      monitors/<name>/evaluations/<time>.json, report.html

Jobs and assets name blobs through the workspace datastore,
`azureml://datastores/<datastore>/paths/<blob name>`; code assets by their https url.
"""

from __future__ import annotations

DATASTORE_URI = "azureml://datastores/{datastore}/paths/"


class Layout:
    def __init__(self, datastore: str, blob_url: str, container: str, prefix: str,
                 stack: str):
        self.datastore = datastore
        self.container_url = f"{blob_url.rstrip('/')}/{container}"
        self.root = "/".join(p for p in (prefix, stack) if p)

    def key(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def uri(self, key: str) -> str:
        """The datastore uri of blob `key` (what jobs, data and model assets take)."""
        return DATASTORE_URI.format(datastore=self.datastore) + key

    def url(self, key: str) -> str:
        """The https url of blob `key` (what code assets take)."""
        return f"{self.container_url}/{key}"

    def key_of(self, uri: str) -> str:
        """The blob name a datastore uri or blob url names."""
        head = DATASTORE_URI.format(datastore=self.datastore)
        if uri.startswith(head):
            return uri[len(head):]
        if uri.startswith(self.container_url + "/"):
            return uri[len(self.container_url) + 1:]
        raise ValueError(f"'{uri}' is not in the datastore '{self.datastore}' "
                         f"({head}...) nor under {self.container_url}/")

    def dataset_key(self, name: str, version: str, ext: str) -> str:
        return self.key("datasets", name, version, f"data.{ext}")

    def code_prefix(self, resource: str, digest: str) -> str:
        return self.key("code", resource, digest) + "/"

    def training_prefix(self, resource: str, job: str) -> str:
        return self.key("training", resource, job) + "/"

    def evaluation_key(self, model: str, digest: str) -> str:
        return self.key("evaluations", model, digest, "evaluation.json")

    def requests_prefix(self, endpoint: str) -> str:
        return self.key("requests", endpoint) + "/"

    def ground_truth_prefix(self, endpoint: str) -> str:
        return self.key("ground-truth", endpoint) + "/"

    def batch_prefix(self, name: str, digest: str) -> str:
        return self.key("batch", name, digest) + "/"
