"""A provider that hands each verb to the handler of the resource's type.

Handlers are classes with the provider's verbs for one resource type, named in a
table as "module:Class" relative to the provider's package and imported on first
use, so that planning a stack imports only what its resource types need.

Verbs run on parallel threads (`--parallelism`), so the cache of handlers is built
under a lock: two threads asking for the same type at once get one handler, never two
(a second handler would hold a second set of clients, servers or caches).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from .provider import (
    ApplyResponse,
    CheckRequest,
    CheckResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    DiffRequest,
    DiffResponse,
    InvokeRequest,
    InvokeResponse,
    ObserveRequest,
    ObserveResponse,
    Problem,
    Progress,
    Provider,
    ProviderContext,
    TickRequest,
    TickResponse,
    UpdateRequest,
    default_diff,
)

if TYPE_CHECKING:
    from .moves.verbs import ExportRequest, ExportResponse, ImportRequest


class ResourceHandler:
    """Base of a provider's handler for one resource type: the verbs of the provider
    contract for that type. `observe`, `create`, `update` and `delete` are the handler's
    to write; `check`, `diff` and `tick` default to nothing to say, an attribute-wise
    diff and no controller."""

    rtype: ClassVar[str] = ""
    """The resource type the handler realises (`dataset`, `endpoint`, ...)."""

    def __init__(self, ctx: ProviderContext):
        self.ctx = ctx

    def spec(self, inputs: dict[str, Any]) -> Any:
        """The inputs as the portable model of `rtype`, defaults filled in, secrets
        revealed: the one place a handler turns its inputs into a typed spec."""
        from .spec.models import RESOURCE_TYPES
        from .values import reveal

        return RESOURCE_TYPES[self.rtype].model_validate({**reveal(inputs), "type": self.rtype})

    def check(self, req: CheckRequest) -> CheckResponse:
        return CheckResponse()

    def diff(self, req: DiffRequest) -> DiffResponse:
        return default_diff(req)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        raise NotImplementedError(f"{type(self).__name__}.observe")

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        raise NotImplementedError(f"{type(self).__name__}.create")

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        raise NotImplementedError(f"{type(self).__name__}.update")

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        raise NotImplementedError(f"{type(self).__name__}.delete")

    def tick(self, req: TickRequest) -> TickResponse | None:
        return None


class StateOnlyRetrainingPolicyHandler(ResourceHandler):
    """A retraining policy recorded in state only, for providers whose platform has no
    such object: `mlform watch` decides it in the engine (`mlform.ml.retraining`) over
    what the state records and retrains by a targeted apply through the ordinary verbs.
    A provider mixes it in before its own handler base (which supplies `__init__`)."""

    rtype = "retraining_policy"

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        self.spec(req.inputs)  # a policy that does not validate is refused here
        # a schedule counts from here until the policy first acts
        return ApplyResponse(id=req.resource.name,
                             outputs={"last_action": None, "created_at": time.time()})

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        self.spec(req.inputs)
        prior = req.prior_outputs or {}
        return ApplyResponse(id=req.resource.name,
                             outputs={**prior, "last_action": prior.get("last_action"),
                                      "created_at": prior.get("created_at", time.time())})

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        return ObserveResponse(exists=req.outputs is not None, id=req.resource.name,
                               outputs=req.outputs)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        return DeleteResponse()


class DispatchingProvider(Provider):
    handlers: ClassVar[dict[str, str]] = {}
    """Resource type -> "module:Class", relative to `handler_package`."""
    handler_package: ClassVar[str] = ""

    def __init__(self, ctx: ProviderContext):
        super().__init__(ctx)
        self._handlers: dict[str, ResourceHandler] = {}
        self._handlers_lock = threading.Lock()

    def make_handler(self, cls: type[ResourceHandler]) -> ResourceHandler:
        """Construct a handler; providers whose handlers need more than the context
        (clients, settings) override this."""
        return cls(self.ctx)

    def failure(self, exc: Exception, req: Any) -> str | None:
        """The error text for an exception a handler raised, or None to let it propagate."""
        return None

    def handler(self, rtype: str) -> ResourceHandler:
        """The handler of `rtype`, imported and built on first use, once per provider."""
        found = self._handlers.get(rtype)
        if found is not None:  # the common case takes no lock
            return found
        with self._handlers_lock:
            if rtype not in self._handlers:  # another thread may have built it meanwhile
                if rtype not in self.handlers:
                    raise ValueError(f"provider '{self.ctx.provider_name}' does not realise "
                                     f"'{rtype}' resources")
                module, _, cls = self.handlers[rtype].partition(":")
                mod = importlib.import_module(f"{self.handler_package}.{module}")
                self._handlers[rtype] = self.make_handler(getattr(mod, cls))
            return self._handlers[rtype]

    def _run(self, verb: str, req: Any, failed: Callable[[str], Any], *args: Any) -> Any:
        try:
            return getattr(self.handler(req.resource.type), verb)(req, *args)
        except Exception as exc:
            message = self.failure(exc, req)
            if message is None:
                raise
            return failed(message)

    def check(self, req: CheckRequest) -> CheckResponse:
        # Checks are optional: a handler without one has nothing to say before diff.
        if not hasattr(self.handler(req.resource.type), "check"):
            return CheckResponse()
        return self._run("check", req, lambda e: CheckResponse(problems=[Problem((), e)]))

    def diff(self, req: DiffRequest) -> DiffResponse:
        return self._run("diff", req, lambda e: DiffResponse(error=e))

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        return self._run("observe", req, lambda e: ObserveResponse(exists=False, error=e))

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._run("create", req, lambda e: ApplyResponse(error=e), progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._run("update", req, lambda e: ApplyResponse(error=e), progress)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        return self._run("delete", req, lambda e: DeleteResponse(error=e), progress)

    def tick(self, req: TickRequest) -> TickResponse | None:
        if not hasattr(self.handler(req.resource.type), "tick"):
            return None
        return self._run("tick", req, lambda e: TickResponse(error=e))

    def can_move(self, rtype: str) -> bool:
        # A type moves when its handler has both move verbs (see `mlform.engine.moves`).
        if rtype not in self.handlers:
            return False
        handler = self.handler(rtype)
        return hasattr(handler, "export") and hasattr(handler, "import_")

    def export(self, req: ExportRequest) -> ExportResponse:
        from .moves.verbs import ExportResponse

        if not self.can_move(req.resource.type):
            return super().export(req)
        return self._run("export", req, lambda e: ExportResponse(error=e))

    def import_(self, req: ImportRequest, progress: Progress) -> ApplyResponse:
        if not self.can_move(req.resource.type):
            return super().import_(req, progress)
        return self._run("import_", req, lambda e: ApplyResponse(error=e), progress)

    def invoke(self, req: InvokeRequest) -> InvokeResponse:
        # Only types that serve have an `invoke`; the others keep the base answer.
        if req.resource.type not in self.handlers or \
                not hasattr(self.handler(req.resource.type), "invoke"):
            return super().invoke(req)
        return self._run("invoke", req, lambda e: InvokeResponse(error=e, status=502))
