"""Domain errors that blueprints map to HTTP responses."""


class DomainError(Exception):
    """Base class: a request the service refuses, with a message safe to show."""

    status = 422


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class ValidationError(DomainError):
    """Input that breaks a rule; ``field`` names the offending field when there is one."""

    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Conflict(DomainError):
    status = 409


class Stale(Conflict):
    """A change made from a page older than the stored row (the optimistic version check)."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"This {what} has changed since you opened it; reload to see the saved version."
        )
