"""JOC's dialect on Storno's POST /api/v1/orders/cancel/: reading a JS7 cancelOrders body and
answering as JOC does (docs/contracts/js7/, NOTES.md). The view is api/bulk.OrdersCancelView.

Reading (`read_joc_body`), every refusal an HTTP 420 `{deliveryDate, error: {code, message}}`
(error420.resolved.json) whose message names each field:
  1. a key neither JOC's schema nor Storno's extras know      → JOC-420 "x: unknown field; did
     you mean y?" (backoffice/unknown_fields.py)
  2. JOC's keys against cancelOrders.resolved.json            → JOC-420 "path: message"
     (providers/contracts.schema_errors); Storno's extras through their serializer → JOC-420
  3. dateFrom not older than dateTo                           → JOC-400 "'dateFrom' must be
     older than 'dateTo'"
  4. then JOC's fields become Storno's order filter (cancellations/order_filter.py); what it
     can't apply is listed in `ignored` as {field, reason}, and a filter that can match no
     Storno order (only JS7 workflows, or only the states FAILED, BROKEN, UNKNOWN) is known
     before any query: JOC-161 "No orders found." for a job, total 0 for a dry run.

One relaxation of JOC's schema: orderIds may also hold Storno order ids (positive integers);
JOC's strings are order numbers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.response import Response

from backoffice.api import NON_FIELD, flatten_errors
from backoffice.unknown_fields import unknown_fields
from providers.contracts import schema, schema_errors

from ..errors import CancellationError
from ..filter_dates import resolve_date
from ..filter_parsing import parse_order_filter
from ..order_filter import STATE_ALIASES, OrderFilter

CANCEL_ORDERS = "js7/cancelOrders.resolved.json"
JOC_SCHEMA = schema(CANCEL_ORDERS)
JOC_KEYS = tuple(JOC_SCHEMA["properties"])
JOC_STATES = tuple(JOC_SCHEMA["properties"]["states"]["items"]["enum"])
INVALID = "JOC-420"  # JOC's code for a request it can't take (schema violations included)
BAD_DATES = "JOC-400"
NO_ORDERS = "JOC-161"
NO_ORDERS_MESSAGE = "No orders found."  # JOC's own words, kept for clients that compare them
BAD_DATES_MESSAGE = "'dateFrom' must be older than 'dateTo'"
SELECTING_KEYS = ("workflowIds", "folders", "states", "dateFrom", "dateTo")


def _inbound_schema() -> dict:
    """JOC's schema, with Storno's order ids (integers) allowed beside its strings."""
    inbound = copy.deepcopy(JOC_SCHEMA)
    order_ids = inbound["properties"]["orderIds"]
    order_ids["items"] = {"anyOf": [order_ids["items"], {"type": "integer", "minimum": 1}]}
    return inbound


INBOUND_SCHEMA = _inbound_schema()


class JocError(Exception):
    """A refusal in JOC's words: HTTP 420 with JOC's error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class JocRequest:
    storno: dict  # Storno's extras, validated (reasonId, dryRun, …)
    order_filter: OrderFilter | None  # None: no Storno order can match
    ignored: list[dict] = field(default_factory=list)  # [{field, reason}]


def stamp() -> str:
    """JOC's timestamps: UTC ISO 8601 with milliseconds."""
    now = timezone.now()
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def joc_ok(extra: dict) -> dict:
    """JOC's ok answer (ok.resolved.json) and Storno's additions."""
    return {"deliveryDate": stamp(), "surveyDate": stamp(), "ok": True, **extra}


def joc_error_response(error: JocError) -> Response:
    body = {"deliveryDate": stamp(), "error": {"code": error.code, "message": error.message}}
    response = Response(body, status=420)
    response.reason_phrase = "Invalid Request"  # JOC's words for 420 (NOTES.md)
    return response


def security_response(status_code: int, message: str, *, authenticated: bool, headers) -> Response:
    """JOC's 401/403 (security401_403.resolved.json)."""
    body = {"isAuthenticated": authenticated, "isPermitted": False, "message": message}
    return Response(body, status=status_code, headers=headers)


def cancellation_error(error: CancellationError, rename: dict) -> JocError:
    """A service's refusal in JOC's words: no match is JOC-161, anything else JOC-420."""
    if "no_match" in error.codes:
        return JocError(NO_ORDERS, NO_ORDERS_MESSAGE)
    return JocError(INVALID, _messages(flatten_errors(error.message_dict, rename=rename)))


def _messages(errors: list[dict]) -> str:
    return "; ".join(
        e["message"] if e["field"] == NON_FIELD else f"{e['field']}: {e['message']}" for e in errors
    )


# --- reading -------------------------------------------------------------------------------------


def read_joc_body(body, storno_serializer_class) -> JocRequest:
    """The request, or JocError saying everything wrong with it at once."""
    if not isinstance(body, dict):
        raise JocError(INVALID, _("Send the body as a JSON object."))
    storno_keys = list(storno_serializer_class().fields)
    problems = [f"{k}: {m}" for k, m in unknown_fields(body, [*JOC_KEYS, *storno_keys]).items()]
    joc = {key: body[key] for key in JOC_KEYS if key in body}
    problems += schema_errors(joc, INBOUND_SCHEMA)
    storno = storno_serializer_class(data={k: body[k] for k in storno_keys if k in body})
    if not storno.is_valid():
        problems += [_messages(flatten_errors(storno.errors))]
    if problems:
        raise JocError(INVALID, "; ".join(problems))
    _check_date_order(joc)
    filter_data, ignored, matches_nothing = _storno_filter(joc)
    try:
        order_filter = parse_order_filter(filter_data)
    except CancellationError as exc:  # what the schema can't see: a time zone, a 13th month
        raise cancellation_error(exc, {}) from exc
    return JocRequest(storno.validated_data, None if matches_nothing else order_filter, ignored)


def _check_date_order(joc: dict) -> None:
    if "dateFrom" not in joc or "dateTo" not in joc:
        return
    now, zone = timezone.now(), joc.get("timeZone")
    try:
        start = resolve_date(joc["dateFrom"], time_zone=zone, now=now, is_to=False)
        end = resolve_date(joc["dateTo"], time_zone=zone, now=now, is_to=True)
    except ValueError:
        return  # parse_order_filter names the bad value
    if start >= end:
        raise JocError(BAD_DATES, BAD_DATES_MESSAGE)


def _storno_filter(joc: dict) -> tuple[dict, list[dict], bool]:
    """(order_filter's input, the ignored fields, whether nothing can match)."""
    ignored = []
    if "controllerId" in joc:
        ignored.append(_ignored("controllerId", _("Storno has one order store.")))
    if "orderType" in joc:
        ignored.append(
            _ignored(
                "orderType",
                _("Storno has no fresh or started orders: kill decides about orders in progress."),
            )
        )
    data = {
        key: joc[key] for key in ("orderIds", "timeZone", "deep", "kill", "auditLog") if key in joc
    }
    if joc.get("orderIds"):
        # As in JOC: "If orderIds is specified then workflowIds, folders and states are ignored."
        reason = _("orderIds are given: they alone select.")
        ignored += [_ignored(key, reason) for key in SELECTING_KEYS if key in joc]
        return data, ignored, False
    data.update({key: joc[key] for key in ("folders", "dateFrom", "dateTo") if key in joc})
    nothing = False
    if joc.get("workflowIds"):  # they beat folders in JOC
        nothing = True
        reason = _("Storno's orders belong to no JS7 workflow: no order matches.")
        ignored.append(_ignored("workflowIds", reason))
        if data.pop("folders", None) is not None:
            ignored.append(_ignored("folders", _("workflowIds are given: folders don't apply.")))
    states = [s for s in joc.get("states") or [] if s in STATE_ALIASES]
    for index, state in enumerate(joc.get("states") or []):
        if state not in STATE_ALIASES:
            reason = _("No Storno order is ever %(state)s.") % {"state": state}
            ignored.append(_ignored(f"states.{index}", reason))
    if joc.get("states"):
        nothing = nothing or not states
        data["states"] = states
    return data, ignored, nothing


def _ignored(name: str, reason: str) -> dict:
    return {"field": name, "reason": reason}
