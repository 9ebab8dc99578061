"""Checking a spec's CRM target against the org: does every field it writes exist, take its values, accept the writes?

:func:`org_problems` reads the object's describe (Salesforce's
``sobjects/{type}/describe`` JSON, or ``None`` when the org has no such object)
and reports, at the spec's lines, what the crm_writer would be refused later:
a missing object or field, a read-only field, a field whose type cannot hold the
output, a picklist (or multi-select picklist) lacking one of the enum's values, a result id field too short
for a result id, a review field that is no checkbox.

:func:`salesforce_describe` is the describe of a real org (or the CRM sandbox)
through simple-salesforce; :func:`org_describe` logs in with
:class:`~crmpilot.crm.connect.SalesforceSettings` first. Tests pass a dict's ``get``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession, SalesforceResourceNotFound

from crmpilot.crm.connect import SalesforceSettings, connect
from crmpilot.crm.errors import CRMAuthError, CRMRejected, CRMUnavailable

from .registry import LoadedSpec
from .spec import (
    BooleanOutput,
    EnumOutput,
    ItemsOutput,
    MultiEnumOutput,
    NumberOutput,
    OutputField,
    QuotesOutput,
    SpecProblem,
    TextOutput,
)

__all__ = ["Describe", "MIN_RESULT_ID_LENGTH", "org_describe", "org_problems", "salesforce_describe"]

Describe = Callable[[str], dict[str, Any] | None]
"""An object's describe JSON by API name; ``None`` when the org has no such object."""

MIN_RESULT_ID_LENGTH = 40
"""A text field this long holds a result id (``res_`` and 32 hex digits, see ``result_id_for``) with room to spare."""

_TEXT = frozenset({"string", "textarea"})
_NUMBER = frozenset({"double", "currency", "int", "percent"})
CONFIDENCE_SCALE = 4
"""Decimals a confidence field needs: the confidence is written rounded to 4, and must read back the same."""
_SHOWN = 8


def org_problems(entry: LoadedSpec, describe: Describe) -> list[SpecProblem]:
    """Everything about ``entry``'s CRM target the org would refuse, each at its line of the spec file."""
    spec, src = entry.spec, entry.source
    crm = spec.crm
    if crm is None:
        return []
    described = describe(crm.object)
    if described is None:
        return [src.problem(("crm", "object"), f"crm.object: the org has no object {crm.object!r}")]
    fields: dict[str, Mapping[str, Any]] = {str(f.get("name", "")).lower(): f for f in described.get("fields", ())}
    problems: list[SpecProblem] = []

    def field(loc: tuple[str, ...], api_name: str, what: str) -> Mapping[str, Any] | None:
        found = fields.get(api_name.lower())
        if found is None:
            problems.append(src.problem(loc, f"{'.'.join(loc)}: {crm.object} has no field {api_name!r} ({what})"))
            return None
        if not found.get("updateable", False):
            problems.append(
                src.problem(loc, f"{'.'.join(loc)}: {crm.object}.{found['name']} is read-only for the integration user")
            )
        return found

    for output_name, api_name in crm.fields.items():
        output = spec.outputs.get(output_name)
        loc = ("crm", "fields", output_name)
        found = field(loc, api_name, f"for output {output_name}")
        if found is None or output is None:
            continue
        why = _incompatible(output, found)
        if why:
            problems.append(src.problem(loc, f"crm.fields.{output_name}: {crm.object}.{found['name']} {why}"))
        elif (isinstance(output, EnumOutput) and found.get("type") == "picklist") or isinstance(
            output, MultiEnumOutput
        ):
            active = {str(v.get("value")) for v in found.get("picklistValues") or () if v.get("active", True)}
            for value in output.values:
                if value not in active:
                    problems.append(
                        src.problem(
                            ("outputs", output_name, "values", value),
                            f"outputs.{output_name}.values: the picklist {crm.object}.{found['name']} has no "
                            "active value "
                            f"{value!r} (it has: {_listed(active, found)})",
                        )
                    )

    for output_name, api_name in crm.confidence_fields.items():
        loc = ("crm", "confidence_fields", output_name)
        found = field(loc, api_name, f"for the confidence of {output_name}")
        if found is None:
            continue
        if found.get("type") != "double":  # a percent field would show 0.91 as 0.91 %
            why = f"is {_shape(found)}; a confidence (0 to 1) needs a number field"
        else:
            scale, precision = int(found.get("scale") or 0), int(found.get("precision") or 0)
            ok = scale >= CONFIDENCE_SCALE and precision - scale >= 1
            why = (
                ""
                if ok
                else f"is number({precision}, {scale}); a confidence needs {CONFIDENCE_SCALE} decimals and a digit "
                "before them"
            )
        if why:
            problems.append(
                src.problem(loc, f"crm.confidence_fields.{output_name}: {crm.object}.{found['name']} {why}")
            )

    result = field(("crm", "result_id_field"), crm.result_id_field, "the result id marker")
    if result is not None and (
        result.get("type") not in _TEXT or int(result.get("length") or 0) < MIN_RESULT_ID_LENGTH
    ):
        problems.append(
            src.problem(
                ("crm", "result_id_field"),
                f"crm.result_id_field: {crm.object}.{result['name']} is {_shape(result)}; "
                f"it needs to be text of length >= {MIN_RESULT_ID_LENGTH}",
            )
        )
    if crm.review_field:
        review = field(("crm", "review_field"), crm.review_field, "the review checkbox")
        if review is not None and review.get("type") != "boolean":
            problems.append(
                src.problem(
                    ("crm", "review_field"),
                    f"crm.review_field: {crm.object}.{review['name']} is {_shape(review)}; it needs to be a "
                    "checkbox (boolean)",
                )
            )
    if crm.trace_field:
        trace = field(("crm", "trace_field"), crm.trace_field, "the trace id")
        if trace is not None and (trace.get("type") not in _TEXT or int(trace.get("length") or 0) < 32):
            problems.append(
                src.problem(
                    ("crm", "trace_field"),
                    f"crm.trace_field: {crm.object}.{trace['name']} is {_shape(trace)}; it needs to be text of "
                    "length >= 32",
                )
            )
    return problems


def _incompatible(output: OutputField, found: Mapping[str, Any]) -> str | None:
    """Why ``found`` cannot hold ``output``'s values, or None when it can."""
    kind = found.get("type")
    length = int(found.get("length") or 0)
    if isinstance(output, EnumOutput):
        if kind == "picklist":
            return None
        if kind in _TEXT:
            longest = max(len(v) for v in output.values)
            return None if length >= longest else f"is {_shape(found)}, shorter than the longest value ({longest})"
        return f"is {_shape(found)}; an enum needs a picklist or a text field"
    if isinstance(output, MultiEnumOutput):
        return None if kind == "multipicklist" else f"is {_shape(found)}; a multi_enum needs a multi-select picklist"
    if isinstance(output, BooleanOutput):
        return None if kind == "boolean" else f"is {_shape(found)}; a boolean needs a checkbox (boolean)"
    if isinstance(output, NumberOutput):
        return None if kind in _NUMBER else f"is {_shape(found)}; a number needs a number, currency or percent field"
    if isinstance(output, TextOutput):
        if kind not in _TEXT:
            return f"is {_shape(found)}; text needs a text or text area field"
        return (
            None
            if length >= output.max_length
            else f"is {_shape(found)}; it cannot hold max_length {output.max_length}"
        )
    assert isinstance(output, QuotesOutput | ItemsOutput)
    return (
        None if kind == "textarea" and length > 255 else f"is {_shape(found)}; a list of items needs a long text area"
    )


def _shape(found: Mapping[str, Any]) -> str:
    kind = str(found.get("type"))
    return f"{kind}({found.get('length')})" if kind in _TEXT else kind


def _listed(values: set[str], found: Mapping[str, Any]) -> str:
    ordered = [str(v.get("value")) for v in found.get("picklistValues") or () if str(v.get("value")) in values]
    shown = ", ".join(ordered[:_SHOWN]) or "none"
    return shown + (f", … {len(ordered) - _SHOWN} more" if len(ordered) > _SHOWN else "")


def _content(exc: SalesforceError) -> str:
    """The body of Salesforce's answer as text: simple-salesforce keeps the parsed JSON (or the text) there, though its
    stubs say bytes."""
    return str(exc.content)


def salesforce_describe(sf: Salesforce) -> Describe:
    """The describe of ``sf``'s org, one API call per object asked (cached); errors translated to
    :mod:`crmpilot.crm.errors`."""
    seen: dict[str, dict[str, Any] | None] = {}

    def describe(sobject: str) -> dict[str, Any] | None:
        if sobject.lower() in seen:
            return seen[sobject.lower()]
        try:
            body = sf.restful(f"sobjects/{sobject}/describe", method="GET")
        except SalesforceResourceNotFound:
            body = None
        except SalesforceExpiredSession as exc:
            raise CRMAuthError(f"Salesforce rejected the session describing {sobject}: {_content(exc)}") from exc
        except SalesforceError as exc:
            if exc.status >= 500:
                raise CRMUnavailable(f"Salesforce answered {exc.status} describing {sobject}") from exc
            raise CRMRejected(f"Salesforce refused to describe {sobject}: {_content(exc)}") from exc
        except requests.RequestException as exc:
            raise CRMUnavailable(f"Salesforce unreachable: {exc}") from exc
        seen[sobject.lower()] = None if body is None else dict(body)
        return seen[sobject.lower()]

    return describe


def org_describe(settings: SalesforceSettings | None = None) -> Describe:
    """Log in to the configured org (``CRMPILOT_SALESFORCE_*``) and describe its objects."""
    return salesforce_describe(connect(settings or SalesforceSettings()))
