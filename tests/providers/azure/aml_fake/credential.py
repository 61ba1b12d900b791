"""A `TokenCredential` for the fake: a dummy bearer token, shaped as a JWT (unsigned) because
parts of the SDK decode the token's claims (object id, tenant) before calling the service."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from azure.core.credentials import AccessToken

OBJECT_ID = "00000000-0000-0000-0000-0000000000aa"
TENANT_ID = "00000000-0000-0000-0000-0000000000cc"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class FakeCredential:
    """Hands out a token valid for an hour; the fake accepts any bearer token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        expires = int(time.time()) + 3600
        claims = {"oid": OBJECT_ID, "tid": TENANT_ID, "upn": "mlform-test@example.com",
                  "appid": OBJECT_ID, "aud": scopes[0] if scopes else "", "exp": expires}
        token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.fake"
        return AccessToken(token, expires)

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeCredential:
        return self

    def __exit__(self, *args: Any) -> None:
        pass
