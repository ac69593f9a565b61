"""Pachyderm auth for S3 callers: the access key is a Pachyderm token.

As in Pachyderm's own gateway, a caller signs with ``access key = secret
key = their Pachyderm token``. The token is checked with ``auth_v2.WhoAmI``;
if the backend answers that auth is not activated, every caller is let in
and signatures go unchecked. Answers are cached for ``cache_seconds`` so a
busy client costs one WhoAmI a minute, not one per request.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from pachs3gw.gateway._errors import Context, to_s3_error
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs.client import PfsClient
from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import IAuthenticator


@implementer(IAuthenticator)
class PachydermAuthenticator:
    """Validates access keys as Pachyderm tokens.

    ``enabled`` starts True (fail closed) and turns False once the backend
    says auth is not activated -- call :meth:`probe` at startup to find out
    before the first request. It is re-checked whenever a cached answer
    expires.

    Threads: reactor thread only.
    """

    def __init__(
        self, client: PfsClient, reactor: IReactorTime, cache_seconds: float = 60.0) -> None:
        self._client = client
        self._reactor = reactor
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, str | Exception]] = {}
        self.enabled = True
        #: Until when ``enabled`` is an answer from the backend, not a guess.
        self._auth_known_until = 0.0

    def probe(self) -> Deferred[bool]:
        """Ask the backend whether auth is active (WhoAmI without a token)."""
        return Deferred.fromCoroutine(self._probe())

    async def _probe(self) -> bool:
        try:
            await self._client.with_token(None).who_am_i()
        except pfs_errors.AuthNotActivated:
            self.enabled = False
        except (pfs_errors.Unauthenticated, pfs_errors.PermissionDenied):
            self.enabled = True
        except pfs_errors.PfsError:
            # Unreachable: fail closed, but this is a guess (see check_anonymous).
            self.enabled = True
            return self.enabled
        else:
            self.enabled = True
        self._auth_known_until = self._reactor.seconds() + self._cache_seconds
        return self.enabled

    def check_anonymous(self) -> Deferred[None]:
        """Unsigned requests: AccessDenied while auth is known on, 503 while unknowable."""
        return Deferred.fromCoroutine(self._check_anonymous())

    async def _check_anonymous(self) -> None:
        now = self._reactor.seconds()
        if self._auth_known_until > now:
            if self.enabled:
                raise errors.AccessDenied()
            return
        try:
            await self._client.with_token(None).who_am_i()
        except pfs_errors.AuthNotActivated:
            self.enabled = False
        except (pfs_errors.Unauthenticated, pfs_errors.PermissionDenied):
            self.enabled = True
        except pfs_errors.PfsError as e:
            raise to_s3_error(e, Context()) from None
        else:
            self.enabled = True
        self._auth_known_until = now + self._cache_seconds
        if self.enabled:
            raise errors.AccessDenied()

    def secret_for(self, access_key: str) -> Deferred[str]:
        return Deferred.fromCoroutine(self._secret_for(access_key))

    async def _secret_for(self, access_key: str) -> str:
        now = self._reactor.seconds()
        cached = self._cache.get(access_key)
        if cached is not None and cached[0] > now:
            if isinstance(cached[1], Exception):
                raise _rejected()
            return cached[1]
        outcome: str | Exception
        try:
            await self._client.with_token(access_key).who_am_i()
        except pfs_errors.AuthNotActivated:
            self.enabled = False
            outcome = access_key
        except (pfs_errors.Unauthenticated, pfs_errors.PermissionDenied):
            self.enabled = True
            outcome = _rejected()
        except pfs_errors.PfsError as e:
            # Unavailable and friends: not the caller's fault, not cached.
            raise to_s3_error(e, Context()) from None
        else:
            self.enabled = True
            outcome = access_key
        self._cache[access_key] = (now + self._cache_seconds, outcome)
        if len(self._cache) > 10000:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        if isinstance(outcome, Exception):
            raise _rejected()
        return outcome


def _rejected() -> errors.S3Error:
    return errors.InvalidAccessKeyId(
        "The access key is not a valid Pachyderm token (it may have expired)."
    )
