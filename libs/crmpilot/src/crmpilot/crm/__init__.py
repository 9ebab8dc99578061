"""The CRM side: the ports, their Salesforce and in-memory adapters, field mapping, safe write-back and revert.

Modules beside these names: ``connect`` (logins), ``salesforce`` (the adapter),
``revert`` (undo applied write-backs), ``changes`` / ``watermark`` / ``feedback``
(CRM changes into events, for the crm_source service), ``status`` (org facts
for ``crmpilot crm status``).
"""

from .errors import CRMAuthError, CRMError, CRMLimitExceeded, CRMNotFound, CRMRejected, CRMRowLocked, CRMUnavailable
from .fake import FakeCRM
from .mapping import MANAGED_FIELDS, PlannedWrite, plan_write
from .port import CRM, ChangedRecord, ChangeFeed, RecordRef, RecordState, RecordUpdate, UpdateOutcome
from .writeback import AuditLog, WriteReport, write_back

__all__ = [
    "CRM",
    "AuditLog",
    "CRMAuthError",
    "CRMError",
    "CRMLimitExceeded",
    "CRMNotFound",
    "CRMRejected",
    "CRMRowLocked",
    "CRMUnavailable",
    "ChangeFeed",
    "ChangedRecord",
    "FakeCRM",
    "MANAGED_FIELDS",
    "PlannedWrite",
    "RecordRef",
    "RecordState",
    "RecordUpdate",
    "UpdateOutcome",
    "WriteReport",
    "plan_write",
    "write_back",
]
