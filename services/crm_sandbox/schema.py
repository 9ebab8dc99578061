"""sObject metadata the sandbox serves: objects, fields, picklists, and their describe.

Standard fields follow Salesforce's standard objects (names, types, lengths,
which are createable or updateable); the custom `AI_*__c` enrichment fields are
the ones crmpilot's built-in tasks write, and their closed vocabularies come from
`crmpilot.tasks.taxonomy`, so the sandbox rejects exactly the values the real
org's restricted picklists would.

The enrichment specs of the deployment (`CRMPILOT_ENRICHMENTS_DIR`) add what they
target, as the org's admin would have configured it (`schema_for`, `org_schema`):
each missing custom field they map, typed from its output, and the values of each
standard picklist they map, replaced by the enum's and restricted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, Literal

from crmpilot.enrichments.registry import Registry, load_registry
from crmpilot.enrichments.spec import (
    BooleanOutput,
    EnrichmentSpec,
    EnumOutput,
    MultiEnumOutput,
    NumberOutput,
    OutputField,
    SpecError,
    TextOutput,
)
from crmpilot.errors import Fatal
from crmpilot.tasks.taxonomy import PRIORITIES, SENTIMENTS, category_names

__all__ = [
    "FieldSpec",
    "FieldType",
    "SObjectSpec",
    "Schema",
    "UnknownSObject",
    "default_schema",
    "describe_global",
    "describe_sobject",
    "org_schema",
    "schema_for",
    "with_enrichments",
]

FieldType = Literal[
    "id",
    "string",
    "textarea",
    "picklist",
    "multipicklist",
    "boolean",
    "double",
    "currency",
    "int",
    "percent",
    "email",
    "phone",
    "url",
    "reference",
    "datetime",
    "date",
]

TEXT_TYPES: frozenset[str] = frozenset({"string", "textarea", "picklist", "multipicklist", "email", "phone", "url"})
MULTI_PICKLIST_LENGTH = 4099
"""What describe reports as a multi-select picklist's length (255 per value and the separators, at most 4,099)."""
NUMBER_TYPES: frozenset[str] = frozenset({"double", "currency", "int", "percent"})

_SOAP_TYPES: Mapping[str, str] = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "datetime": "xsd:dateTime",
    "date": "xsd:date",
}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of an sObject, as describe reports it and writes are checked against."""

    name: str
    label: str
    type: FieldType
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    custom: bool = False
    picklist: tuple[str, ...] = ()
    picklist_labels: tuple[tuple[str, str], ...] = ()
    restricted: bool = False
    default: str | bool | None = None
    picklist_default: str | None = None
    """The value describe marks as the picklist's default (what the UI preselects) when the API sets none."""
    reference_to: tuple[str, ...] = ()
    precision: int = 0
    scale: int = 0
    digits: int = 0
    auto_number: bool = False
    calculated: bool = False

    @property
    def filterable(self) -> bool:
        """Long text areas can be neither filtered nor sorted in SOQL."""
        return not (self.type == "textarea" and self.length > 255)

    @property
    def defaulted_on_create(self) -> bool:
        return self.default is not None or self.type == "boolean" or self.name == "OwnerId"

    @property
    def required_on_create(self) -> bool:
        return self.createable and not self.nillable and not self.defaulted_on_create

    @property
    def relationship_name(self) -> str | None:
        if self.type != "reference":
            return None
        return self.name[:-2] if self.name.endswith("Id") else self.name


@dataclass(frozen=True, slots=True)
class SObjectSpec:
    """One sObject type: its name, key prefix and fields in describe order."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: tuple[FieldSpec, ...]
    _index: dict[str, FieldSpec] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {f.name.lower(): f for f in self.fields})

    def field(self, name: str) -> FieldSpec | None:
        """The field called `name`, case-insensitively like the API."""
        return self._index.get(name.lower())


@dataclass(frozen=True, slots=True)
class Schema:
    """The sObject types of the org, looked up by name or by id key prefix."""

    sobjects: tuple[SObjectSpec, ...]

    def get(self, name: str) -> SObjectSpec | None:
        lowered = name.lower()
        return next((s for s in self.sobjects if s.name.lower() == lowered), None)

    def by_prefix(self, key_prefix: str) -> SObjectSpec | None:
        return next((s for s in self.sobjects if s.key_prefix == key_prefix), None)


# -- field builders ---------------------------------------------------------------------


def _text(name: str, label: str, length: int, **kw: Any) -> FieldSpec:
    return FieldSpec(name, label, "string", length=length, **kw)


def _long(name: str, label: str, length: int = 32000, **kw: Any) -> FieldSpec:
    return FieldSpec(name, label, "textarea", length=length, **kw)


def _pick(
    name: str,
    label: str,
    values: Iterable[str],
    *,
    restricted: bool = True,
    labels: Mapping[str, str] | None = None,
    **kw: Any,
) -> FieldSpec:
    return FieldSpec(
        name,
        label,
        "picklist",
        length=255,
        picklist=tuple(values),
        picklist_labels=tuple((labels or {}).items()),
        restricted=restricted,
        **kw,
    )


def _multi(name: str, label: str, values: Iterable[str], **kw: Any) -> FieldSpec:
    """A restricted multi-select picklist: values joined by ``;``, kept in the order of ``values``."""
    return FieldSpec(
        name, label, "multipicklist", length=MULTI_PICKLIST_LENGTH, picklist=tuple(values), restricted=True, **kw
    )


def _ref(name: str, label: str, *targets: str, **kw: Any) -> FieldSpec:
    return FieldSpec(name, label, "reference", length=18, reference_to=targets, **kw)


def _readonly(spec: FieldSpec) -> FieldSpec:
    return replace(spec, createable=False, updateable=False)


def _system_fields() -> tuple[FieldSpec, ...]:
    return (
        FieldSpec("Id", "Record ID", "id", length=18, createable=False, updateable=False, nillable=False),
        _readonly(FieldSpec("IsDeleted", "Deleted", "boolean", nillable=False)),
        _readonly(FieldSpec("CreatedDate", "Created Date", "datetime", nillable=False)),
        _readonly(_ref("CreatedById", "Created By ID", "User", nillable=False)),
        _readonly(FieldSpec("LastModifiedDate", "Last Modified Date", "datetime", nillable=False)),
        _readonly(_ref("LastModifiedById", "Last Modified By ID", "User", nillable=False)),
        _readonly(FieldSpec("SystemModstamp", "System Modstamp", "datetime", nillable=False)),
    )


def _owner() -> FieldSpec:
    return _ref("OwnerId", "Owner ID", "User", nillable=False)


def _name_field() -> FieldSpec:
    return FieldSpec("Name", "Full Name", "string", length=121, createable=False, updateable=False, calculated=True)


def _ai_fields() -> tuple[FieldSpec, ...]:
    """The crmpilot enrichment fields; the same set on every enriched object."""
    return (
        _pick("AI_Category__c", "AI Category", category_names(), custom=True),
        _pick("AI_Priority__c", "AI Priority", PRIORITIES, custom=True),
        _pick("AI_Sentiment__c", "AI Sentiment", SENTIMENTS, custom=True),
        _long("AI_Summary__c", "AI Summary", custom=True),
        FieldSpec("AI_Confidence__c", "AI Confidence", "double", precision=5, scale=4, custom=True),
        FieldSpec("AI_Score__c", "AI Score", "double", precision=5, scale=2, custom=True),
        _long("AI_Score_Reasons__c", "AI Score Reasons", custom=True),
        FieldSpec("AI_Review_Required__c", "AI Review Required", "boolean", nillable=False, default=False, custom=True),
        _text("AI_Trace_Id__c", "AI Trace Id", 64, custom=True),
        _text("AI_Result_Id__c", "AI Result Id", 255, custom=True),
        FieldSpec(
            "AI_Summary_Review_Required__c",
            "AI Summary Review Required",
            "boolean",
            nillable=False,
            default=False,
            custom=True,
        ),
        _text("AI_Summary_Result_Id__c", "AI Summary Result Id", 255, custom=True),
    )


_INDUSTRIES = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
    "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
    "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government",
    "Healthcare", "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media",
    "Not For Profit", "Recreation", "Retail", "Shipping", "Technology",
    "Telecommunications", "Transportation", "Utilities", "Other",
)  # fmt: skip
_LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")


def _case() -> SObjectSpec:
    return SObjectSpec("Case", "Case", "Cases", "500", (
        *_system_fields(),
        FieldSpec("CaseNumber", "Case Number", "string", length=30, createable=False,
                  updateable=False, nillable=False, auto_number=True),
        _ref("AccountId", "Account ID", "Account"),
        _ref("ContactId", "Contact ID", "Contact"),
        _owner(),
        _text("SuppliedName", "Name", 80, updateable=False),
        FieldSpec("SuppliedEmail", "Email Address", "email", length=80, updateable=False),
        FieldSpec("SuppliedPhone", "Phone", "phone", length=40, updateable=False),
        _text("SuppliedCompany", "Company", 80, updateable=False),
        _pick("Type", "Case Type", ("Question", "Problem", "Feature Request"), restricted=False),
        _pick("Status", "Status", ("New", "Working", "Escalated", "Closed"), nillable=False, default="New"),
        _pick("Reason", "Case Reason", ("Installation", "Equipment Complexity", "Performance",
              "Breakdown", "Equipment Design", "Feedback", "Other"), restricted=False),
        _pick("Origin", "Case Origin", ("Phone", "Email", "Web")),
        _text("Subject", "Subject", 255),
        _pick("Priority", "Priority", ("High", "Medium", "Low"), default="Medium"),
        _long("Description", "Description"),
        _readonly(FieldSpec("IsClosed", "Closed", "boolean", nillable=False, calculated=True)),
        _readonly(FieldSpec("ClosedDate", "Closed Date", "datetime")),
        FieldSpec("IsEscalated", "Escalated", "boolean", nillable=False, default=False),
        *_ai_fields(),
    ))  # fmt: skip


def _lead() -> SObjectSpec:
    return SObjectSpec("Lead", "Lead", "Leads", "00Q", (
        *_system_fields(),
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80, nillable=False),
        _name_field(),
        _text("Title", "Title", 128),
        _text("Company", "Company", 255, nillable=False),
        FieldSpec("Email", "Email", "email", length=80),
        FieldSpec("Phone", "Phone", "phone", length=40),
        FieldSpec("Website", "Website", "url", length=255),
        _text("Country", "Country", 80),
        _long("Description", "Description"),
        _pick("LeadSource", "Lead Source", _LEAD_SOURCES, restricted=False),
        _pick("Status", "Status", ("Open - Not Contacted", "Working - Contacted",
              "Closed - Converted", "Closed - Not Converted"), nillable=False,
              default="Open - Not Contacted"),
        _pick("Industry", "Industry", _INDUSTRIES, restricted=False),
        _pick("Rating", "Rating", ("Hot", "Warm", "Cold"), restricted=False),
        FieldSpec("AnnualRevenue", "Annual Revenue", "currency", precision=18, scale=0),
        FieldSpec("NumberOfEmployees", "Employees", "int", digits=8),
        _owner(),
        _readonly(FieldSpec("IsConverted", "Converted", "boolean", nillable=False)),
        *_ai_fields(),
    ))  # fmt: skip


_EMAIL_STATUS = {"0": "New", "1": "Read", "2": "Replied", "3": "Sent", "4": "Forwarded", "5": "Draft"}
EMAIL_DRAFT_STATUS = "5"


def _email_message() -> SObjectSpec:
    return SObjectSpec("EmailMessage", "Email Message", "Email Messages", "02s", (
        *_system_fields(),
        _ref("ParentId", "Parent ID", "Case"),
        FieldSpec("TextBody", "Text Body", "textarea", length=131072),
        FieldSpec("HtmlBody", "HTML Body", "textarea", length=131072),
        _text("Subject", "Subject", 3000),
        _text("FromName", "From Name", 1000),
        FieldSpec("FromAddress", "From Address", "email", length=255),
        _text("ToAddress", "To Address", 4000),
        _text("CcAddress", "CC Address", 4000),
        FieldSpec("Incoming", "Is Incoming", "boolean", nillable=False, default=False),
        FieldSpec("MessageDate", "Message Date", "datetime"),
        _pick("Status", "Status", _EMAIL_STATUS, labels=_EMAIL_STATUS, nillable=False, default="0"),
        *_ai_fields(),
    ))  # fmt: skip


def _account() -> SObjectSpec:
    return SObjectSpec("Account", "Account", "Accounts", "001", (
        *_system_fields(),
        _text("Name", "Account Name", 255, nillable=False),
        _pick("Type", "Account Type", ("Prospect", "Customer - Direct", "Customer - Channel",
              "Channel Partner / Reseller", "Installation Partner", "Technology Partner",
              "Other"), restricted=False),
        _pick("Industry", "Industry", _INDUSTRIES, restricted=False),
        FieldSpec("Phone", "Account Phone", "phone", length=40),
        FieldSpec("Website", "Website", "url", length=255),
        _text("BillingCity", "Billing City", 40),
        _text("BillingCountry", "Billing Country", 80),
        FieldSpec("AnnualRevenue", "Annual Revenue", "currency", precision=18, scale=0),
        FieldSpec("NumberOfEmployees", "Employees", "int", digits=8),
        _long("Description", "Account Description"),
        _owner(),
    ))  # fmt: skip


def _contact() -> SObjectSpec:
    return SObjectSpec("Contact", "Contact", "Contacts", "003", (
        *_system_fields(),
        _ref("AccountId", "Account ID", "Account"),
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80, nillable=False),
        _name_field(),
        _text("Title", "Title", 128),
        _text("Department", "Department", 80),
        FieldSpec("Email", "Email", "email", length=80),
        FieldSpec("Phone", "Business Phone", "phone", length=40),
        FieldSpec("MobilePhone", "Mobile Phone", "phone", length=40),
        _pick("LeadSource", "Lead Source", _LEAD_SOURCES, restricted=False),
        _long("Description", "Contact Description"),
        _owner(),
    ))  # fmt: skip


def _user() -> SObjectSpec:
    return SObjectSpec("User", "User", "Users", "005", (
        *_system_fields(),
        _text("Username", "Username", 80, nillable=False),
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80, nillable=False),
        _name_field(),
        FieldSpec("Email", "Email", "email", length=128, nillable=False),
        _text("Alias", "Alias", 8, nillable=False),
        _text("Title", "Title", 80),
        _text("Department", "Department", 80),
        FieldSpec("IsActive", "Active", "boolean", nillable=False, default=True),
        _pick("UserType", "User Type", ("Standard", "AutomatedProcess", "Guest"),
              nillable=False, default="Standard", updateable=False),
    ))  # fmt: skip


_STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition",
           "Negotiation/Review", "Closed Won", "Closed Lost")  # fmt: skip
CLOSED_STAGES: Mapping[str, bool] = {"Closed Won": True, "Closed Lost": False}
"""The closed stages of an Opportunity, and whether each one is won (IsClosed, IsWon follow StageName)."""


def _opportunity() -> SObjectSpec:
    return SObjectSpec("Opportunity", "Opportunity", "Opportunities", "006", (
        *_system_fields(),
        _ref("AccountId", "Account ID", "Account"),
        _text("Name", "Name", 120, nillable=False),
        _long("Description", "Description"),
        _pick("StageName", "Stage", _STAGES, nillable=False, picklist_default="Prospecting"),
        FieldSpec("Amount", "Amount", "currency", precision=18, scale=2),
        FieldSpec("Probability", "Probability (%)", "percent", precision=3, scale=0),
        FieldSpec("CloseDate", "Close Date", "date", nillable=False),
        _pick("Type", "Opportunity Type", ("Existing Customer - Upgrade", "Existing Customer - Replacement",
              "Existing Customer - Downgrade", "New Customer"), restricted=False),
        _text("NextStep", "Next Step", 255),
        _pick("LeadSource", "Lead Source", _LEAD_SOURCES, restricted=False),
        _readonly(FieldSpec("IsClosed", "Closed", "boolean", nillable=False, calculated=True)),
        _readonly(FieldSpec("IsWon", "Won", "boolean", nillable=False, calculated=True)),
        _owner(),
    ))  # fmt: skip


@cache
def default_schema() -> Schema:
    """The org's schema: Case, Lead, EmailMessage, Account, Contact, Opportunity, User."""
    return Schema((_case(), _lead(), _email_message(), _account(), _contact(), _opportunity(), _user()))


# -- what the enrichment specs target ---------------------------------------------------


class UnknownSObject(Fatal):
    """An enrichment spec targets an sObject the sandbox does not serve."""

    def __init__(self, enrichment: str, sobject: str, known: Iterable[str]) -> None:
        self.enrichment = enrichment
        self.sobject = sobject
        super().__init__(
            f"crm.object: the CRM sandbox has no sObject {sobject!r} (enrichment {enrichment}); "
            f"it serves {', '.join(known)}"
        )


def _label(api_name: str) -> str:
    """``AI_Churn_Result_Id__c`` -> ``AI Churn Result Id``, as an admin would label the field."""
    return api_name.removesuffix("__c").replace("_", " ").strip() or api_name


def _custom_field(api_name: str, output: OutputField) -> FieldSpec:
    """The custom field an admin creates for an output: its type follows the output's."""
    label = _label(api_name)
    if isinstance(output, EnumOutput):
        return _pick(api_name, label, output.values, custom=True)
    if isinstance(output, MultiEnumOutput):
        return _multi(api_name, label, output.values, custom=True)
    if isinstance(output, BooleanOutput):
        return _checkbox(api_name, label)
    if isinstance(output, NumberOutput):
        return FieldSpec(api_name, label, "double", precision=18, scale=0 if output.integer else 4, custom=True)
    if isinstance(output, TextOutput):
        if output.max_length <= 255:
            return _text(api_name, label, output.max_length, custom=True)
        return _long(api_name, label, output.max_length, custom=True)
    return _long(api_name, label, custom=True)  # quotes: one line per item


def _checkbox(api_name: str, label: str) -> FieldSpec:
    return FieldSpec(api_name, label, "boolean", nillable=False, default=False, custom=True)


def _marker_fields(spec: EnrichmentSpec) -> list[FieldSpec]:
    crm = spec.crm
    assert crm is not None
    markers = [_text(crm.result_id_field, _label(crm.result_id_field), 255, custom=True)]
    if crm.review_field:
        markers.append(_checkbox(crm.review_field, _label(crm.review_field)))
    if crm.trace_field:
        markers.append(_text(crm.trace_field, _label(crm.trace_field), 64, custom=True))
    return markers


def _enriched(sobject: SObjectSpec, spec: EnrichmentSpec) -> SObjectSpec:
    """``sobject`` with what ``spec`` writes: missing custom fields created, mapped standard picklists restricted to
    its values."""
    crm = spec.crm
    assert crm is not None
    fields = list(sobject.fields)
    position = {f.name.lower(): i for i, f in enumerate(fields)}

    def add(new: FieldSpec) -> None:
        if new.name.lower() not in position and new.name.endswith("__c"):
            position[new.name.lower()] = len(fields)
            fields.append(new)

    for output_name, api_name in crm.fields.items():
        output = spec.outputs[output_name]
        at = position.get(api_name.lower())
        if at is None:
            add(_custom_field(api_name, output))
            continue
        existing = fields[at]
        if isinstance(output, EnumOutput) and existing.type == "picklist" and not existing.custom:
            values = tuple(output.values)
            fields[at] = replace(
                existing,
                picklist=values,
                picklist_labels=(),
                restricted=True,
                default=existing.default if existing.default in values else None,
                picklist_default=existing.picklist_default if existing.picklist_default in values else None,
            )
    for api_name in crm.confidence_fields.values():
        add(FieldSpec(api_name, _label(api_name), "double", precision=5, scale=4, custom=True))
    for marker in _marker_fields(spec):
        add(marker)
    return replace(sobject, fields=tuple(fields))


def with_enrichments(schema: Schema, specs: Iterable[EnrichmentSpec]) -> Schema:
    """``schema`` plus what ``specs`` write to the CRM; raises :class:`UnknownSObject`.

    Specs without a ``crm`` target add nothing; no spec gives ``schema`` itself.
    """
    sobjects = list(schema.sobjects)
    for spec in specs:
        if spec.crm is None:
            continue
        at = next((i for i, s in enumerate(sobjects) if s.name.lower() == spec.crm.object.lower()), None)
        if at is None:
            raise UnknownSObject(spec.name, spec.crm.object, (s.name for s in sobjects))
        sobjects[at] = _enriched(sobjects[at], spec)
    if all(new is old for new, old in zip(sobjects, schema.sobjects, strict=True)):
        return schema
    return Schema(tuple(sobjects))


def schema_for(registry: Registry | None, base: Schema | None = None) -> Schema:
    """The default schema (or ``base``) plus what the registry's specs target.

    No registry, or an empty one, gives the default schema unchanged. A spec whose
    object the sandbox does not serve is refused with a :class:`SpecError` naming
    the object, at the line of its ``crm.object``.
    """
    schema = base or default_schema()
    if registry is None:
        return schema
    problems = []
    for entry in registry.entries.values():
        try:
            schema = with_enrichments(schema, [entry.spec])
        except UnknownSObject as exc:
            problems.append(entry.source.problem(("crm", "object"), str(exc)))
    if problems:
        raise SpecError(problems)
    return schema


def org_schema() -> Schema:
    """The schema the sandbox serves: the default one plus what the specs of ``CRMPILOT_ENRICHMENTS_DIR`` target.

    Reads the spec files (raises :class:`SpecError` for a bad one); without the
    variable it is :func:`default_schema` exactly.
    """
    return schema_for(load_registry())


# -- describe -----------------------------------------------------------------------------


def describe_field(spec: FieldSpec) -> dict[str, Any]:
    """A field as `sobjects/{type}/describe` lists it."""
    return {
        "aggregatable": spec.filterable and spec.type != "multipicklist",
        "autoNumber": spec.auto_number,
        "byteLength": spec.length * 3 if spec.type in TEXT_TYPES or spec.type == "id" else 0,
        "calculated": spec.calculated,
        "caseSensitive": False,
        "createable": spec.createable,
        "custom": spec.custom,
        "defaultValue": spec.default if spec.type == "boolean" else None,
        "defaultedOnCreate": spec.defaulted_on_create,
        "digits": spec.digits,
        "externalId": False,
        "filterable": spec.filterable,
        "groupable": spec.filterable
        and spec.type not in ("double", "currency", "percent", "datetime", "multipicklist"),
        "idLookup": spec.name == "Id",
        "label": spec.label,
        "length": spec.length,
        "name": spec.name,
        "nameField": spec.name == "Name" or spec.name == "CaseNumber",
        "nillable": spec.nillable,
        "picklistValues": [
            {
                "active": True,
                "defaultValue": value == (spec.default if spec.default is not None else spec.picklist_default),
                "label": dict(spec.picklist_labels).get(value, value),
                "validFor": None,
                "value": value,
            }
            for value in spec.picklist
        ],
        "precision": spec.precision,
        "referenceTo": list(spec.reference_to),
        "relationshipName": spec.relationship_name,
        "restrictedPicklist": spec.restricted,
        "scale": spec.scale,
        "soapType": _SOAP_TYPES.get(spec.type, "xsd:string"),
        "sortable": spec.filterable and spec.type != "multipicklist",
        "type": spec.type,
        "unique": spec.name == "Username",
        "updateable": spec.updateable,
    }


def _sobject_summary(spec: SObjectSpec, version: str) -> dict[str, Any]:
    base = f"/services/data/v{version}/sobjects/{spec.name}"
    return {
        "name": spec.name,
        "label": spec.label,
        "labelPlural": spec.label_plural,
        "keyPrefix": spec.key_prefix,
        "custom": False,
        "createable": True,
        "updateable": True,
        "deletable": True,
        "queryable": True,
        "retrieveable": True,
        "searchable": True,
        "urls": {
            "sobject": base,
            "describe": f"{base}/describe",
            "rowTemplate": f"{base}/{{ID}}",
        },
    }


def describe_sobject(spec: SObjectSpec, version: str) -> dict[str, Any]:
    """The body of `GET sobjects/{type}/describe`."""
    return {
        **_sobject_summary(spec, version),
        "childRelationships": [],
        "recordTypeInfos": [],
        "fields": [describe_field(f) for f in spec.fields],
    }


def describe_global(schema: Schema, version: str, max_batch_size: int) -> dict[str, Any]:
    """The body of `GET sobjects` (describeGlobal)."""
    return {
        "encoding": "UTF-8",
        "maxBatchSize": max_batch_size,
        "sobjects": [_sobject_summary(s, version) for s in schema.sobjects],
    }
