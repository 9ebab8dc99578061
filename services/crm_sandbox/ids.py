"""Salesforce record ids: 15-character case-sensitive ids and their 18-character form.

An id is a 3-character key prefix naming the sObject type (500 Case, 00Q Lead,
...), a 2-character pod, one reserved character and 9 base-62 digits. The
18-character form appends a checksum that encodes the case of the first 15
characters, so it survives case-insensitive systems. The API always answers
with 18 characters and accepts both.
"""

from __future__ import annotations

import string

__all__ = ["GENERATED_POD", "make_id", "normalize_id", "to_18"]

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_CHECKSUM = string.ascii_uppercase + "012345"
_ALNUM = frozenset(string.ascii_letters + string.digits)

GENERATED_POD = "5g"
"""Pod of ids the server generates; fixed ids (users, demo seed) use others."""


def to_18(id15: str) -> str:
    """Append the case checksum to a 15-character id."""
    suffix = ""
    for start in range(0, 15, 5):
        chunk = id15[start : start + 5]
        bits = sum(1 << i for i, ch in enumerate(chunk) if ch in string.ascii_uppercase)
        suffix += _CHECKSUM[bits]
    return id15 + suffix


def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id; None if it is not an id."""
    if len(value) not in (15, 18) or not set(value) <= _ALNUM:
        return None
    full = to_18(value[:15])
    if len(value) == 18 and value[15:].upper() != full[15:]:
        return None
    return full


def make_id(key_prefix: str, number: int, pod: str = GENERATED_POD) -> str:
    """The 18-character id of record `number` of a type, in the given pod."""
    if number < 0 or number >= 62**9:
        raise ValueError(f"record number out of range: {number}")
    digits = ""
    while number:
        number, rem = divmod(number, 62)
        digits = _BASE62[rem] + digits
    return to_18(f"{key_prefix}{pod}0{digits.rjust(9, '0')}")
