"""The service's exceptions; :func:`service.app.create_app` maps them to HTTP answers."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: ``status_code`` is the HTTP status, ``str(err)`` the message."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class Invalid(ServiceError):
    status_code = 422


class Unavailable(ServiceError):
    """The request could not be served in time; nothing was stored, it may be retried."""

    status_code = 503


def printable(message: str) -> str:
    """``message`` with anything UTF-8 cannot encode (a lone surrogate echoed from the
    input) escaped, so that an error answer can always be sent."""
    return message.encode("utf-8", "backslashreplace").decode("utf-8")
