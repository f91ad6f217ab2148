"""Failures a test or a person arms on a sandbox ("make the next send fail with code X").

A fault is a one-shot record in the kind's sandbox store (collection ``faults``), keyed by the
address it targets (a device token, a number, a room, a user) or ``*`` for whatever comes
next; the next operation that finds it takes it (exactly once, in whichever process) and raises
the provider error it describes, as the real vendor's adapter would.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from courier.core.errors import bad_request
from courier.providers.common import (
    Ambiguous,
    NotSent,
    Permanent,
    ProviderError,
    RecipientGone,
    SandboxContext,
)
from courier.providers.sandbox_store import SandboxStore

FaultError = Literal["not-sent", "ambiguous", "permanent", "gone"]
ANY_TARGET = "*"
COLLECTION = "faults"


# The controls' parameters: kebab-case on the wire (``retry-after``), unknown ones refused.
CONTROL_PARAMS = ConfigDict(populate_by_name=True, extra="forbid")


class FaultParams(BaseModel):
    """Arm one failure: the next operation (on ``target``, else any) raises ``error``."""

    model_config = CONTROL_PARAMS

    error: FaultError = Field(
        description="not-sent: refused, retry later; ambiguous: timed out after sending; "
        "permanent: refused for good; gone: the address no longer exists."
    )
    code: str | None = Field(
        default=None, max_length=64, description="The vendor's error code to report."
    )
    target: str | None = Field(
        default=None,
        max_length=512,
        description="The address it applies to (token, number, room, user); unset: any.",
    )
    retry_after: float | None = Field(
        default=None, alias="retry-after", ge=0, le=3600, description="For not-sent."
    )


DEFAULT_CODES: dict[str, str] = {
    "not-sent": "429",
    "ambiguous": "timeout",
    "permanent": "rejected",
    "gone": "gone",
}


async def arm_fault(store: SandboxStore, params: FaultParams) -> dict[str, Any]:
    fault = {
        "error": params.error,
        "code": params.code or DEFAULT_CODES[params.error],
        "retry-after": params.retry_after,
        "target": params.target or ANY_TARGET,
    }
    await store.put(COLLECTION, params.target or ANY_TARGET, fault)
    return fault


async def raise_armed_fault(store: SandboxStore, *targets: str) -> None:
    """Raise the fault armed for one of ``targets`` (first) or for any, if there is one."""
    for key in (*targets, ANY_TARGET):
        fault = await store.take(COLLECTION, key)
        if fault is not None:
            raise fault_error(fault)


def fault_error(fault: dict[str, Any]) -> Exception:
    code = str(fault.get("code") or DEFAULT_CODES[str(fault["error"])])
    message = f"sandbox: armed failure {fault['error']} ({code})"
    match fault["error"]:
        case "not-sent":
            return NotSent(message, retry_after=fault.get("retry-after"), code=code)
        case "ambiguous":
            return Ambiguous(message, code=code)
        case "gone":
            return RecipientGone(code, message)
        case _:
            return Permanent(code, message)


async def fail_next(ctx: SandboxContext, params: FaultParams) -> dict[str, Any]:
    """The control every sandbox kind serves as ``POST /sandbox/<kind>/fail``."""
    store: SandboxStore = ctx.adapter.store
    return await arm_fault(store, params)


T = TypeVar("T")


async def refused(work: Awaitable[T]) -> T:
    """Run a control's work; what the sandbox refuses (no such call, not ringing ...) is the
    caller's mistake: a 400 naming the vendor's code, never a 500."""
    try:
        return await work
    except ProviderError as error:
        raise bad_request(error.message, code=f"sandbox-{error.code or 'refused'}") from error
