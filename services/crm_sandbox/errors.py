"""Salesforce API errors as exception types.

Each class carries the HTTP status and `errorCode` Salesforce answers with, so
handlers raise the error a real org would return and the HTTP edge renders it
as Salesforce's JSON array `[{"message", "errorCode", "fields"}]`. In sObject
collection results the same error appears per record under `statusCode`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = [
    "AllOrNoneRolledBack",
    "EntityIsDeleted",
    "ExceededIdLimit",
    "InvalidCrossReferenceKey",
    "InvalidEmailAddress",
    "InvalidField",
    "InvalidFieldForInsertUpdate",
    "InvalidQueryFilterOperator",
    "InvalidQueryLocator",
    "InvalidRestrictedPicklist",
    "InvalidSessionId",
    "InvalidType",
    "JsonParserError",
    "MalformedId",
    "MalformedQuery",
    "MethodNotAllowed",
    "MissingArgument",
    "NotFound",
    "NumberOutsideValidRange",
    "RequestLimitExceeded",
    "RequiredFieldMissing",
    "SalesforceError",
    "StringTooLong",
    "UnableToLockRow",
]


class SalesforceError(Exception):
    """An API error: HTTP status, Salesforce `errorCode`, message, affected fields."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "UNKNOWN_EXCEPTION"

    def __init__(self, message: str, fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.fields = list(fields)

    def as_api_error(self) -> dict[str, Any]:
        """The element of a REST error body."""
        return {"message": self.message, "errorCode": self.code, "fields": self.fields}

    def as_record_error(self) -> dict[str, Any]:
        """The element of `errors` in an sObject collection result."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


class InvalidSessionId(SalesforceError):
    status = 401
    code = "INVALID_SESSION_ID"

    def __init__(self) -> None:
        super().__init__("Session expired or invalid")


class RequestLimitExceeded(SalesforceError):
    status = 403
    code = "REQUEST_LIMIT_EXCEEDED"

    def __init__(self) -> None:
        super().__init__("TotalRequests Limit exceeded.")


class NotFound(SalesforceError):
    status = 404
    code = "NOT_FOUND"

    def __init__(self, message: str = "The requested resource does not exist") -> None:
        super().__init__(message)


class EntityIsDeleted(SalesforceError):
    status = 404
    code = "ENTITY_IS_DELETED"

    def __init__(self) -> None:
        super().__init__("entity is deleted")


class MethodNotAllowed(SalesforceError):
    status = 405
    code = "METHOD_NOT_ALLOWED"

    def __init__(self, method: str, allowed: Sequence[str]) -> None:
        super().__init__(f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}")


class InvalidField(SalesforceError):
    code = "INVALID_FIELD"


class InvalidFieldForInsertUpdate(SalesforceError):
    code = "INVALID_FIELD_FOR_INSERT_UPDATE"

    def __init__(self, fields: Sequence[str]) -> None:
        super().__init__(
            f"Unable to create/update fields: {', '.join(fields)}. Please check the security "
            "settings of this field and verify that it is read/write for your profile or "
            "permission set.",
            fields,
        )


class StringTooLong(SalesforceError):
    code = "STRING_TOO_LONG"


class InvalidRestrictedPicklist(SalesforceError):
    code = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


class RequiredFieldMissing(SalesforceError):
    code = "REQUIRED_FIELD_MISSING"

    def __init__(self, fields: Sequence[str]) -> None:
        super().__init__(f"Required fields are missing: [{', '.join(fields)}]", fields)


class NumberOutsideValidRange(SalesforceError):
    code = "NUMBER_OUTSIDE_VALID_RANGE"


class InvalidEmailAddress(SalesforceError):
    code = "INVALID_EMAIL_ADDRESS"


class JsonParserError(SalesforceError):
    code = "JSON_PARSER_ERROR"


class MalformedId(SalesforceError):
    code = "MALFORMED_ID"


class MalformedQuery(SalesforceError):
    code = "MALFORMED_QUERY"


class InvalidType(SalesforceError):
    code = "INVALID_TYPE"


class InvalidQueryFilterOperator(SalesforceError):
    code = "INVALID_QUERY_FILTER_OPERATOR"


class InvalidQueryLocator(SalesforceError):
    code = "INVALID_QUERY_LOCATOR"

    def __init__(self) -> None:
        super().__init__("invalid query locator")


class InvalidCrossReferenceKey(SalesforceError):
    code = "INVALID_CROSS_REFERENCE_KEY"


class UnableToLockRow(SalesforceError):
    code = "UNABLE_TO_LOCK_ROW"

    def __init__(self, record_id: str) -> None:
        super().__init__(f"unable to obtain exclusive access to this record or 1 records: {record_id}")


class ExceededIdLimit(SalesforceError):
    code = "EXCEEDED_ID_LIMIT"

    def __init__(self, limit: int) -> None:
        super().__init__(f"record limit reached. cannot submit more than {limit} records into this call")


class MissingArgument(SalesforceError):
    code = "MISSING_ARGUMENT"


class AllOrNoneRolledBack(SalesforceError):
    code = "ALL_OR_NONE_OPERATION_ROLLED_BACK"

    def __init__(self) -> None:
        super().__init__(
            "Record rolled back because not all records were valid and the request was using AllOrNone header"
        )
