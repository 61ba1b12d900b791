"""The fake's own reads and writes of gs:// objects (batch prediction input and output), through
google-cloud-storage bound to the GCS emulator."""

from __future__ import annotations

import fnmatch
from typing import Any

from .errors import ApiError


def client(storage_url: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="test", credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": storage_url})


def split(uri: str) -> tuple[str, str]:
    if not uri.startswith("gs://"):
        raise ApiError("INVALID_ARGUMENT", f"{uri!r} is not a gs:// URI.")
    bucket, _, path = uri[len("gs://"):].partition("/")
    return bucket, path


def read(storage_url: str, uris: list[str]) -> list[tuple[str, str]]:
    """(uri, text) of every object the URIs name; `*` wildcards match as in gsutil."""
    from google.api_core import exceptions

    gcs = client(storage_url)
    found: list[tuple[str, str]] = []
    for uri in uris:
        bucket, path = split(uri)
        try:
            if "*" in path:
                prefix = path.split("*", 1)[0]
                names = sorted(b.name for b in gcs.list_blobs(bucket, prefix=prefix)
                               if fnmatch.fnmatchcase(b.name, path))
            else:
                names = [path]
            found += [(f"gs://{bucket}/{n}", gcs.bucket(bucket).blob(n).download_as_text())
                      for n in names]
        except exceptions.NotFound:
            raise ApiError("INVALID_ARGUMENT", f"Input {uri} does not exist.") from None
    if not found:
        raise ApiError("INVALID_ARGUMENT", f"No input files match {uris}.")
    return found


def write(storage_url: str, uri: str, text: str) -> None:
    bucket, path = split(uri)
    client(storage_url).bucket(bucket).blob(path).upload_from_string(
        text, content_type="application/jsonl")
