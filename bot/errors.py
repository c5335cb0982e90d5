"""The one error tree of the engine.

FanlineError
├── ConfigError            content or configuration is invalid (file, line, key)  -> CLI exit 2
│   └── ValidationFailed   several ConfigErrors collected by `fanline validate`
├── NluError               model missing, stale or broken
├── ActionError            a custom action failed or timed out
├── StorageError           the database refused (after retries)
├── ChannelError           a provider call failed
│   ├── RetryableSendError     429, 5xx, network: try again later
│   └── PermanentSendError     the message can never be sent (carries the provider code)
└── HttpError              reaches HTTP with its status code; bodies never echo request data
    ├── BadRequest (400)  Forbidden (403)  Unauthorized (401)  NotFound (404)  Conflict (409)
        UnsupportedMediaType (415)  TooManyRequests (429)
"""

from __future__ import annotations

from dataclasses import dataclass


class FanlineError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.key:
            where += f" [{self.key}]"
        return where


class ConfigError(FanlineError):
    """Invalid content or configuration; always says where."""

    def __init__(self, message: str, location: Location | None = None, *, warning: bool = False):
        self.message = message
        self.location = location
        self.warning = warning
        super().__init__(f"{location}: {message}" if location else message)


class ValidationFailed(ConfigError):
    def __init__(self, problems: list[ConfigError]):
        self.problems = problems
        errors = [p for p in problems if not p.warning]
        super().__init__(
            f"{len(errors)} error(s) in content:\n" + "\n".join(f"  {p}" for p in errors)
        )


class NluError(FanlineError):
    pass


class ModelOutdated(NluError):
    """The content's NLU data or config changed and its model is not trained yet."""


class ActionError(FanlineError):
    pass


class StorageError(FanlineError):
    pass


class ChannelError(FanlineError):
    pass


class RetryableSendError(ChannelError):
    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        retry_after: float | None = None,
        in_doubt: bool = False,
    ):
        self.code = code
        self.retry_after = retry_after
        # the request may have reached the provider (a timeout, a dropped connection): look it
        # up before sending again, or the fan could get the text twice
        self.in_doubt = in_doubt
        super().__init__(message)


class PermanentSendError(ChannelError):
    def __init__(self, message: str, *, code: int | None = None):
        self.code = code
        super().__init__(message)


class HttpError(FanlineError):
    status = 500

    def __init__(self, message: str = ""):
        super().__init__(message or self.__class__.__name__)


class BadRequest(HttpError):
    status = 400


class Unauthorized(HttpError):
    status = 401


class Forbidden(HttpError):
    status = 403


class NotFound(HttpError):
    status = 404


class Conflict(HttpError):
    status = 409


class UnsupportedMediaType(HttpError):
    status = 415


class TooManyRequests(HttpError):
    """429; `retry_after` seconds until the next try is allowed."""

    status = 429

    def __init__(self, message: str, retry_after: int):
        self.retry_after = retry_after
        super().__init__(message)
