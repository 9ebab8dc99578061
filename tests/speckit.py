"""Spec files for tests: the shipped churn example with edits, written to a folder with its prompt locked."""

from __future__ import annotations

from pathlib import Path

from crmpilot.enrichments.registry import Registry, load_registry, lock_prompts

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "enrichments"

LEAD_QUALITY = """\
name: lead_quality
source:
  topics: [erp.requests]
  event_types: [erp.request.submitted]
  key: request_id
  where: {kind: [lead, quote]}
inputs:
  domain: {path: contact_email, transform: email_domain, context: true}
  description: {path: description}
outputs:
  quality: {type: enum, values: {good: a real buyer, poor: not a buyer}}
prompt:
  version: "1"
  system: Rate the request.
  user: "<r>domain: {domain}\\n{description}</r>"
crm:
  object: Lead
  record_id: request_id
  where: {kind: [lead]}
  fields: {quality: Lead_Quality__c}
  result_id_field: AI_Quality_Result_Id__c
"""
"""Requests rated for their buying quality: leads and quotes are read (by their email domain only), leads written."""


def churn_text(*, outputs: str = "", extra: str = "") -> str:
    """``examples/enrichments/churn_risk.yaml`` with ``outputs`` (YAML lines) added to its outputs and ``extra``
    appended at the end."""
    text = (EXAMPLES / "churn_risk.yaml").read_text()
    anchor = "\nreview: {auto_apply: 0.8"
    assert anchor in text, "the churn example changed: update tests/speckit.py"
    if outputs:
        text = text.replace(anchor, f"{outputs}{anchor}", 1)
    return text + extra


def locked(folder: Path, text: str, name: str = "churn_risk") -> Registry:
    """The registry of ``folder`` after writing ``text`` as ``<name>.yaml`` there and locking its prompt."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)
    lock_prompts(load_registry([folder]))
    return load_registry([folder])
