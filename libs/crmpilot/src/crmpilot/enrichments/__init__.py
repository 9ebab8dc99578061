"""Enrichments as data: a spec file per enrichment, one registry, one generic pipeline.

- :mod:`.spec`: the spec model and its loader (errors with file and line);
- :mod:`.task`: a spec as a task any provider runs (closed output model, prompt);
- :mod:`.registry`: the deployment's specs (``CRMPILOT_ENRICHMENTS_DIR``) and the prompt lock;
- :mod:`.pipeline`: the handler that runs any spec on the consumer runtime;
- :mod:`.hooks`: named Python hooks, where logic is real;
- :mod:`.warehouse`: the typed ``bi.<name>`` view of each spec;
- :mod:`.orgcheck`: a spec against the org's ``describe`` (objects, fields, picklists).

A result becomes a CRM write in :func:`crmpilot.crm.mapping.plan_write`, from the spec's target.
"""

from .pipeline import EVENT_TYPE, EnrichmentHandler
from .registry import EnrichmentsSettings, Registry, UnknownEnrichment, load_registry
from .spec import EnrichmentSpec, SpecError, SpecProblem, load_spec, parse_spec
from .task import task_for

__all__ = [
    "EVENT_TYPE",
    "EnrichmentHandler",
    "EnrichmentSpec",
    "EnrichmentsSettings",
    "Registry",
    "SpecError",
    "SpecProblem",
    "UnknownEnrichment",
    "load_registry",
    "load_spec",
    "parse_spec",
    "task_for",
]
