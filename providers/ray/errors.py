"""Ray failures in words a user can act on."""

from __future__ import annotations


class RayError(Exception):
    """A failure already explained for the user; its message is shown as is."""


MISSING_EXTRA = "the ray provider needs Ray's job client: pip install 'mlform[ray]'"


def unreachable(address: str, exc: BaseException) -> RayError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return RayError(f"cannot reach the Ray cluster at {address} ({reason[:200]}): check that "
                    "the head node is running and that 'address' is its dashboard URL "
                    "(port 8265 by default; on KubeRay, the head service's dashboard port)")
