"""Typed failures of one organization's API calls.

Every message starts with ``organization '<name>':`` so a cycle over many organizations can
report each failure on one line as is. Messages never contain the API key: the client builds
them from the method, path, status and the API's own error text (with the key redacted).
"""

from __future__ import annotations

from typing import Required, TypedDict, Unpack


class ErrorContext(TypedDict, total=False):
    """Where a failure happened: the keyword arguments every ``ApiError`` takes."""

    org: Required[str]
    method: str | None
    path: str | None
    status: int | None


class ApiError(Exception):
    """The API answered with an error the client does not handle (e.g. 404, 500)."""

    def __init__(
        self,
        message: str,
        *,
        org: str,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.org = org
        self.method = method
        self.path = path
        self.status = status

    @property
    def message(self) -> str:
        return str(self.args[0])


class AuthError(ApiError):
    """401: the key is wrong or revoked; retrying cannot help."""


class BadRequestError(ApiError):
    """400: the request was rejected; ``api_message`` is the API's own explanation."""

    def __init__(self, message: str, *, api_message: str, **kwargs: Unpack[ErrorContext]) -> None:
        super().__init__(message, **kwargs)
        self.api_message = api_message


class RetryExhaustedError(ApiError):
    """Every allowed attempt hit a retryable failure; ``last_cause`` says what the last was."""

    def __init__(
        self, message: str, *, attempts: int, last_cause: str, **kwargs: Unpack[ErrorContext]
    ) -> None:
        super().__init__(message, **kwargs)
        self.attempts = attempts
        self.last_cause = last_cause


class ResponseFormatError(ApiError):
    """A successful response whose body is not what the wire format promises.

    ``field`` is the dotted path of the offending field (``None`` when the body is not JSON).
    """

    def __init__(
        self, message: str, *, field: str | None = None, **kwargs: Unpack[ErrorContext]
    ) -> None:
        super().__init__(message, **kwargs)
        self.field = field


class ResponseTooLargeError(ApiError):
    """A response body went past the client's cap (``limit`` bytes, decoded): reading
    stopped there, so a huge or decompression-bomb body never fills memory. Not retried."""

    def __init__(self, message: str, *, limit: int, **kwargs: Unpack[ErrorContext]) -> None:
        super().__init__(message, **kwargs)
        self.limit = limit
