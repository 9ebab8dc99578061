"""Parsing the SOQL subset the sandbox answers into a small syntax tree.

Supported: `SELECT f1, f2 | COUNT() FROM Type [WHERE cond] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]`, where a condition is a
comparison (`= != <> < <= > >=`, `LIKE`, `[NOT] IN (...)`, and on a multi-select
picklist `INCLUDES (...)` / `EXCLUDES (...)`) on string, number,
boolean, null, date and dateTime literals, combined with AND, OR, NOT and
parentheses (mixing AND and OR needs parentheses, as in Salesforce).
Relationship paths, aggregates other than COUNT(), subqueries and date
literals such as TODAY are not supported and answer MALFORMED_QUERY or
INVALID_FIELD. Written by hand because no maintained Python SOQL parser
exists; errors carry Salesforce's "ERROR at Row:1:Column:N" form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal as TypingLiteral

from .errors import MalformedQuery
from .sftime import parse_date, parse_datetime

__all__ = [
    "And",
    "Comparison",
    "Condition",
    "Not",
    "Or",
    "OrderBy",
    "Query",
    "Value",
    "parse_soql",
]

Value = str | Decimal | bool | None | datetime | date
Operator = TypingLiteral["=", "!=", "<", "<=", ">", ">=", "LIKE", "IN", "NOT IN", "INCLUDES", "EXCLUDES"]

MAX_OFFSET = 2000


@dataclass(frozen=True, slots=True)
class Comparison:
    field: str
    op: Operator
    value: Value | tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Condition


Condition = Comparison | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderBy:
    field: str
    descending: bool
    nulls_last: bool


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query; `fields` is empty for `SELECT COUNT()`."""

    fields: tuple[str, ...]
    sobject: str
    where: Condition | None = None
    order_by: tuple[OrderBy, ...] = ()
    limit: int | None = None
    offset: int | None = None

    @property
    def is_count(self) -> bool:
        return not self.fields


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\w:])
  | (?P<number>[+-]?\d+(?:\.\d+)?)(?![\w.])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<bad>\S+)
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}
_KEYWORDS = frozenset(
    {"select", "from", "where", "and", "or", "not", "in", "like", "includes", "excludes", "order", "by", "asc",
     "desc", "nulls", "first", "last", "limit", "offset", "true", "false", "null"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    column: int

    def keyword(self) -> str | None:
        lowered = self.text.lower()
        return lowered if self.kind == "ident" and lowered in _KEYWORDS else None


def _unescape(body: str, query: str, column: int) -> str:
    out: list[str] = []
    chars = iter(body)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, "")
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
        elif nxt in "%_":
            out.append("\\" + nxt)  # kept for LIKE patterns
        else:
            raise _error(
                query,
                column,
                f"Invalid string literal '{body}'. Illegal character sequence '\\{nxt}' in string literal.",
            )
    return "".join(out)


def _error(query: str, column: int, message: str) -> MalformedQuery:
    line = " ".join(query.splitlines())
    return MalformedQuery(f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:1:Column:{column}\n{message}")


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN.finditer(query):
        kind = match.lastgroup or "bad"
        if kind != "ws":
            tokens.append(_Token(kind, match.group(kind), match.start() + 1))
    tokens.append(_Token("eof", "<EOF>", len(query) + 1))
    return tokens


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _tokenize(query)
        self.pos = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.pos]

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def unexpected(self, token: _Token | None = None) -> MalformedQuery:
        token = token or self.tok
        shown = token.text if token.kind == "eof" else f"'{token.text}'"
        return _error(self.query, token.column, f"unexpected token: {shown}")

    def at(self, *keywords: str) -> bool:
        return self.tok.keyword() in keywords

    def expect(self, keyword: str) -> None:
        if not self.at(keyword):
            raise self.unexpected()
        self.advance()

    def expect_punct(self, text: str) -> None:
        if self.tok.text != text or self.tok.kind != "punct":
            raise self.unexpected()
        self.advance()

    def field(self) -> str:
        if self.tok.kind != "ident" or self.tok.keyword():
            raise self.unexpected()
        return self.advance().text

    def integer(self) -> int:
        token = self.advance()
        if token.kind != "number" or not token.text.isdigit():
            raise self.unexpected(token)
        return int(token.text)

    # -- grammar ------------------------------------------------------------------

    def query_(self) -> Query:
        self.expect("select")
        fields = self.select_list()
        self.expect("from")
        sobject = self.field()
        where = None
        if self.at("where"):
            self.advance()
            where = self.condition()
        order_by: tuple[OrderBy, ...] = ()
        if self.at("order"):
            self.advance()
            self.expect("by")
            order_by = self.order_list()
        limit = offset = None
        if self.at("limit"):
            self.advance()
            limit = self.integer()
        if self.at("offset"):
            self.advance()
            offset_token = self.tok
            offset = self.integer()
            if offset > MAX_OFFSET:
                raise _error(self.query, offset_token.column, f"Maximum SOQL offset allowed is {MAX_OFFSET}")
        if self.tok.kind != "eof":
            raise self.unexpected()
        return Query(fields, sobject, where, order_by, limit, offset)

    def select_list(self) -> tuple[str, ...]:
        if self.tok.text.lower() == "count" and self.tokens[self.pos + 1].text == "(":
            self.advance()
            self.expect_punct("(")
            self.expect_punct(")")
            return ()
        fields = [self.field()]
        while self.tok.text == ",":
            self.advance()
            fields.append(self.field())
        return tuple(fields)

    def order_list(self) -> tuple[OrderBy, ...]:
        items = []
        while True:
            name = self.field()
            descending = False
            if self.at("asc", "desc"):
                descending = self.advance().text.lower() == "desc"
            nulls_last = descending
            if self.at("nulls"):
                self.advance()
                if not self.at("first", "last"):
                    raise self.unexpected()
                nulls_last = self.advance().text.lower() == "last"
            items.append(OrderBy(name, descending, nulls_last))
            if self.tok.text != ",":
                return tuple(items)
            self.advance()

    def condition(self) -> Condition:
        first = self.term()
        if not self.at("and", "or"):
            return first
        joiner = self.tok.keyword()
        parts = [first]
        while self.at("and", "or"):
            if self.tok.keyword() != joiner:
                raise self.unexpected()
            self.advance()
            parts.append(self.term())
        return And(tuple(parts)) if joiner == "and" else Or(tuple(parts))

    def term(self) -> Condition:
        if self.at("not"):
            self.advance()
            return Not(self.term())
        if self.tok.text == "(" and self.tok.kind == "punct":
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        field = self.field()
        if self.tok.kind == "op":
            text = self.advance().text
            op: Operator = "!=" if text == "<>" else text  # type: ignore[assignment]  # the lexer gives op tokens only for the operators
            return Comparison(field, op, self.value())
        if self.at("like"):
            self.advance()
            pattern = self.value()
            if not isinstance(pattern, str):
                raise self.unexpected(self.tokens[self.pos - 1])
            return Comparison(field, "LIKE", pattern)
        if self.at("includes", "excludes"):
            selection: Operator = "INCLUDES" if self.advance().keyword() == "includes" else "EXCLUDES"
            return Comparison(field, selection, self.values())
        negated = self.at("not")
        if negated:
            self.advance()
        if not self.at("in"):
            raise self.unexpected()
        self.advance()
        return Comparison(field, "NOT IN" if negated else "IN", self.values())

    def values(self) -> tuple[Value, ...]:
        """``(v1, v2, ...)``."""
        self.expect_punct("(")
        values = [self.value()]
        while self.tok.text == ",":
            self.advance()
            values.append(self.value())
        self.expect_punct(")")
        return tuple(values)

    def value(self) -> Value:
        token = self.advance()
        if token.kind == "string":
            return _unescape(token.text[1:-1], self.query, token.column)
        if token.kind == "number":
            return Decimal(token.text)
        if token.kind == "datetime":
            parsed = parse_datetime(token.text)
            if parsed is None:
                raise self.unexpected(token)
            return parsed
        if token.kind == "date":
            day = parse_date(token.text)
            if day is None:
                raise self.unexpected(token)
            return day
        keyword = token.keyword()
        if keyword in ("true", "false"):
            return keyword == "true"
        if keyword == "null":
            return None
        raise self.unexpected(token)


def parse_soql(query: str) -> Query:
    """Parse a SOQL query; raises MalformedQuery where Salesforce would."""
    return _Parser(query).query_()
