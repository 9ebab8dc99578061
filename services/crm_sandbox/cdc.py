"""Rendering logged changes as Change Data Capture events.

The shape is the one Salesforce's CDC channels deliver (`ChangeEventHeader`
with entity, record ids, change type and origin, commit user and timestamp,
changed fields; on UPDATE only the changed fields in the payload), so a
source connector can be written once for the sandbox and the real org.
"""

from __future__ import annotations

from typing import Any

from .store import LoggedChange

__all__ = ["SCHEMA_ID", "change_event"]

SCHEMA_ID = "crm_sandbox-cdc-v1"


def change_event(logged: LoggedChange) -> dict[str, Any]:
    change = logged.change
    header = {
        "entityName": change.entity,
        "recordIds": [change.record_id],
        "changeType": change.change_type,
        "changeOrigin": change.change_origin,
        "transactionKey": change.transaction_key,
        "sequenceNumber": change.sequence_number,
        "commitTimestamp": int(change.commit_timestamp.timestamp() * 1000),
        "commitNumber": logged.replay_id,
        "commitUser": change.commit_user,
        "changedFields": list(change.changed_fields),
    }
    payload = {k: v for k, v in change.values.items() if k != "Id"}
    return {
        "schema": SCHEMA_ID,
        "payload": {"ChangeEventHeader": header, **payload},
        "event": {"replayId": logged.replay_id},
    }
