"""Training and evaluation: teach the local model a company's categories, and measure any provider.

- :mod:`.dataset` reads labelled tickets (CSV, JSONL, a warehouse query);
- :mod:`.training` embeds them and fits a calibrated head (``crmpilot train``),
  saved as a versioned artefact (:mod:`crmpilot.llm.local.trained`);
- :mod:`.runner` runs ``classify_ticket`` over a dataset through the shared LLM
  client with any provider, and :mod:`.report` turns the items into figures
  (:mod:`.metrics`, :mod:`.calibration`) saved as JSON; :mod:`.htmlreport` and
  :mod:`.console` present them (``crmpilot eval``);
- :mod:`.banking77` reproduces the published figures on Banking77.

Nothing here runs at import; scikit-learn is imported when first needed.
"""

from crmpilot.evaluation.clients import EvalSetup, build_eval_setup, spec_with_prompt
from crmpilot.evaluation.dataset import Dataset, LabelledTicket, read_labelled, read_soql, read_sql
from crmpilot.evaluation.errors import (
    DatasetError,
    EvaluationError,
    ReportError,
    TrainingError,
)
from crmpilot.evaluation.report import EvalReport, ItemResult, build_report, load_report
from crmpilot.evaluation.runner import evaluate, run_items
from crmpilot.evaluation.taxonomy import check_labels, load_categories
from crmpilot.evaluation.training import (
    HYBRID,
    TrainOptions,
    embed_texts,
    fit_head,
    train_head,
)

__all__ = [
    "HYBRID",
    "Dataset",
    "DatasetError",
    "EvalReport",
    "EvalSetup",
    "EvaluationError",
    "ItemResult",
    "LabelledTicket",
    "ReportError",
    "TrainOptions",
    "TrainingError",
    "build_eval_setup",
    "build_report",
    "check_labels",
    "embed_texts",
    "evaluate",
    "fit_head",
    "load_categories",
    "load_report",
    "read_labelled",
    "read_soql",
    "read_sql",
    "run_items",
    "spec_with_prompt",
    "train_head",
]
