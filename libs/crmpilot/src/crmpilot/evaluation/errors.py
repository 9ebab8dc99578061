"""The evaluation package's errors: bad data, bad reports, nothing to train on.

```
CrmpilotError
└── EvaluationError
    ├── DatasetError        a labelled file or query cannot be read, or its labels do not fit
    ├── TrainingError       there is not enough labelled data to fit and calibrate a head
    └── ReportError         an eval report file cannot be read
```
"""

from __future__ import annotations

from crmpilot.errors import CrmpilotError

__all__ = ["DatasetError", "EvaluationError", "ReportError", "TrainingError"]


class EvaluationError(CrmpilotError):
    """Base of every error of training and evaluation."""


class DatasetError(EvaluationError):
    """A labelled dataset cannot be read or does not fit the task."""


class TrainingError(EvaluationError):
    """The data cannot train a head (too few examples or classes)."""


class ReportError(EvaluationError):
    """An eval report cannot be read."""
