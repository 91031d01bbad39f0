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
