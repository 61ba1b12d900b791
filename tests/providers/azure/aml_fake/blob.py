"""Moving files between the fake's local work directories and the workspace's storage (a
container in Azurite), addressed the ways Azure ML addresses them:

- `azureml://datastores/<ds>/paths/<path>` and the long form
  `azureml://subscriptions/../resourcegroups/../workspaces/../datastores/<ds>/paths/<path>`;
- `https://<account>.blob.<suffix>/<container>/<path>` (what `AzureBlobDatastore` URIs look
  like) and Azurite's own `http://127.0.0.1:<port>/<account>/<container>/<path>`;
- `wasbs://<container>@<account>.blob.<suffix>/<path>`.

Only the workspaceblobstore datastore exists. A path ending in "/" (or with several blobs
under it) is a folder; otherwise a single blob.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import bad_request
from .state import Store
from .workspace import DATASTORE

_DATASTORE_URI = re.compile(r"azureml://(?:.*/)?datastores/(?P<ds>[^/]+)/paths/(?P<path>.*)$",
                            re.IGNORECASE)


class Storage:
    def __init__(self, store: Store):
        self.store = store
        from azure.storage.blob import BlobServiceClient

        self._client = BlobServiceClient.from_connection_string(
            f"DefaultEndpointsProtocol=http;AccountName={store.account_name};"
            f"AccountKey={store.account_key};BlobEndpoint={store.blob_url};")

    def locate(self, uri: str) -> tuple[str, str]:
        """(container, blob path) for a URI in any of the forms above."""
        match = _DATASTORE_URI.match(uri)
        if match:
            if match.group("ds") != DATASTORE:
                raise bad_request(f"Datastore {match.group('ds')} not found in this workspace.")
            return self.store.container, unquote(match.group("path"))
        if uri.startswith("wasbs://") or uri.startswith("wasb://"):
            parts = urlsplit(uri)
            return parts.username or "", unquote(parts.path.lstrip("/"))
        if uri.startswith(("https://", "http://")):
            path = unquote(urlsplit(uri).path).lstrip("/")
            if path.startswith(self.store.account_name + "/"):  # Azurite's path-style URL
                path = path[len(self.store.account_name) + 1:]
            container, _, blob = path.partition("/")
            return container, blob
        raise bad_request(f"Unsupported storage URI {uri!r}: use azureml://datastores/"
                          f"{DATASTORE}/paths/..., an https blob URL or wasbs://.")

    def download(self, uri: str, dest: Path) -> Path:
        """Fetch a blob or folder to `dest` (a folder); return the local path the job sees: the
        file itself for a single blob, the folder otherwise."""
        container_name, path = self.locate(uri)
        container = self._client.get_container_client(container_name)
        dest.mkdir(parents=True, exist_ok=True)
        if path and not path.endswith("/"):
            blob = container.get_blob_client(path)
            if blob.exists():
                target = dest / Path(path).name
                target.write_bytes(blob.download_blob().readall())
                return target
            path += "/"
        found = False
        for name in container.list_blob_names(name_starts_with=path):
            found = True
            target = dest / name[len(path):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(container.get_blob_client(name).download_blob().readall())
        if not found:
            raise bad_request(f"No data at {uri}.")
        return dest

    def upload(self, source: Path, uri: str) -> None:
        """Store `source` (a file or a folder, recursively) at `uri`."""
        container_name, path = self.locate(uri)
        container = self._client.get_container_client(container_name)
        if source.is_file():
            name = path.rstrip("/") + "/" + source.name if path.endswith("/") else path
            with source.open("rb") as data:
                container.upload_blob(name, data, overwrite=True)
            return
        prefix = path.rstrip("/")
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            rel = file.relative_to(source).as_posix()
            with file.open("rb") as data:
                container.upload_blob(f"{prefix}/{rel}" if prefix else rel, data, overwrite=True)
