"""Why a request was refused, in words for the person who asked. Each front door (HTTP status
codes, Slack messages) translates these into its own answer."""


class RefusedError(Exception):
    """A request the platform will not accept; nothing was recorded or published."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ForbiddenError(RefusedError):
    """The actor may not act on this owner's things."""


class NotFoundError(RefusedError):
    """The environment or volume the request names does not exist."""


class ConflictError(RefusedError):
    """The name is taken, the object is in use, or the request id was used for another request."""


class QuotaExceededError(RefusedError):
    """The owner's quota does not leave room for this request."""


class InvalidError(RefusedError):
    """One field of the request is wrong; ``field`` names it as the request spelled it, or is
    empty when no one field is: the fields are each valid but contradict one another."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class UnavailableError(RefusedError):
    """The platform could not queue the request (Redis unreachable); safe to try again."""
