"""simple-salesforce helpers of the tests (``from tests.sfkit import first_error, sobject``).

simple-salesforce reaches an sObject type as an attribute (``sf.Case``), through
``Salesforce.__getattr__``, which is annotated to return the bulk handlers too
(``sf.bulk``, ``sf.bulk2``); :func:`sobject` gives the :class:`SFType` that
``sf.<name>`` is for any other name, typed as such. :func:`first_error` reads the
first error of the answer a :class:`SalesforceError` carries.
"""

from __future__ import annotations

from typing import Any, cast

from simple_salesforce.api import Salesforce, SFType
from simple_salesforce.exceptions import SalesforceError

__all__ = ["first_error", "sobject"]


def sobject(sf: Salesforce, name: str) -> SFType:
    """``sf.<name>``: ``sobject(sf, "Case").get(case_id)`` does what ``sf.Case.get(case_id)`` does."""
    found = getattr(sf, name)
    assert isinstance(found, SFType), f"sf.{name} is {type(found).__name__}, not an sObject type"
    return found


def first_error(exc: SalesforceError) -> dict[str, Any]:
    """``exc.content[0]``: the first of the errors Salesforce answered with.

    simple-salesforce keeps the decoded JSON body in ``content`` (a list of errors), though it annotates it ``bytes``.
    """
    return cast(list[dict[str, Any]], exc.content)[0]
