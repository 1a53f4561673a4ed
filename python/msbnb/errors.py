"""Exceptions raised for msbnb's status codes (include/msbnb/msbnb.h).

Every failing C call becomes one of these, carrying msbnb's one-line message
(e.g. ``msbnb_quantize: group_size 100 does not divide cols 130``) and the status code.
Each class also derives from the closest built-in exception, so ``except ValueError``
catches bad arguments and shapes, ``except OSError`` I/O failures.
"""

__all__ = [
    "MsbnbError", "InvalidArgumentError", "OutOfMemoryError", "MsbnbIOError", "FormatError",
    "ShapeError", "UnsupportedError", "NumericError", "NotFoundError", "InternalError",
    "error_for_status",
]


class MsbnbError(Exception):
    """A failure reported by the msbnb C library. ``status`` is the msbnb_status code."""

    status = None

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status


class InvalidArgumentError(MsbnbError, ValueError):
    status = -1


class OutOfMemoryError(MsbnbError, MemoryError):
    status = -2


class MsbnbIOError(MsbnbError, OSError):
    status = -3


class FormatError(MsbnbError, ValueError):
    status = -4


class ShapeError(MsbnbError, ValueError):
    status = -5


class UnsupportedError(MsbnbError, ValueError):  # a setting or file msbnb refuses
    status = -6


class NumericError(MsbnbError, ValueError):
    status = -7


class NotFoundError(MsbnbError, KeyError):
    status = -8

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InternalError(MsbnbError, RuntimeError):
    status = -9


_BY_STATUS = {cls.status: cls for cls in (
    InvalidArgumentError, OutOfMemoryError, MsbnbIOError, FormatError, ShapeError,
    UnsupportedError, NumericError, NotFoundError, InternalError)}


def error_for_status(status, message):
    """The exception for a non-zero msbnb_status and its message."""
    cls = _BY_STATUS.get(status, MsbnbError)
    return cls(message or f"msbnb status {status}", status)
