"""The provider's side of a server's control routes (see `app` for the routes)."""

from __future__ import annotations

import httpx

from .config import ServingConfig


class ControlError(Exception):
    """The server refused or failed a control call; the message is the server's."""


class ServerClient:
    def __init__(self, port: int, token: str, timeout: float = 5.0):
        """`token`: the server's control token (`process.read_token`)."""
        self.url = f"http://127.0.0.1:{port}"
        self._http = httpx.Client(base_url=self.url, timeout=timeout,
                                  headers={"authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def health(self) -> tuple[int, dict]:
        """(status code, body); raises httpx.HTTPError when the server does not answer."""
        r = self._http.get("/health")
        return r.status_code, _json(r)

    def config(self) -> ServingConfig:
        r = self._http.get("/-/config")
        _raise_for(r)
        return ServingConfig.model_validate_json(r.content)

    def serve(self, config: ServingConfig, timeout: float = 120.0) -> dict:
        """Serve `config` (loading its models first); returns the new health body."""
        r = self._http.post("/-/config", content=config.model_dump_json(),
                            headers={"content-type": "application/json"}, timeout=timeout)
        _raise_for(r)
        return _json(r)

    def stats(self, since: float) -> dict:
        r = self._http.get("/-/stats", params={"since": repr(since)})
        _raise_for(r)
        return _json(r)


def _json(r: httpx.Response) -> dict:
    try:
        body = r.json()
    except ValueError:
        return {"error": r.text[:500]}
    return body if isinstance(body, dict) else {"body": body}


def _raise_for(r: httpx.Response) -> None:
    if r.status_code >= 400:
        raise ControlError(_json(r).get("error") or f"HTTP {r.status_code}")
