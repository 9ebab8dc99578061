"""The CRM side: the port, its Salesforce and in-memory adapters, field mapping and safe write-back."""

from .errors import CRMAuthError, CRMError, CRMLimitExceeded, CRMNotFound, CRMRejected, CRMRowLocked, CRMUnavailable
from .fake import FakeCRM
from .mapping import MANAGED_FIELDS, PlannedWrite, plan_write
from .port import CRM, RecordRef, RecordState, RecordUpdate, UpdateOutcome
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
