"""The one place outgoing HTTP sessions are built: default timeout, no redirects, no retries
(retrying is the dispatcher's job, with backoff and a record of every attempt).

Deliveries go through `provider_session(kind, …)`: one pooled keep-alive `requests.Session`
per process and provider kind, so a worker sending many deliveries opens one connection per
provider host instead of one per request. What differs between calls — timeout, auth, headers,
hooks, cookies — lives on the small `CallSession` each delivery gets and is applied to each of
its requests; the shared session keeps only connections (it stores no cookies). A forked worker
builds its own pool (the key includes the process id), so no two processes share a socket.
The proxy and CA-bundle settings requests takes from the environment are read once per process
and host (close_pools() forgets them).
"""

from __future__ import annotations

import os
import threading
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict

DEFAULT_TIMEOUT = 10.0
USER_AGENT = "Storno/1.0 (+order cancellations)"


class _TimeoutSession(requests.Session):
    def __init__(self, timeout: float):
        super().__init__()
        self.default_timeout = timeout
        self.max_redirects = 0
        adapter = HTTPAdapter(max_retries=0)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.headers["User-Agent"] = USER_AGENT

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.default_timeout)
        kwargs.setdefault("allow_redirects", False)
        return super().request(method, url, **kwargs)


def build_session(*, timeout: float = DEFAULT_TIMEOUT, auth=None, headers=None) -> requests.Session:
    """A session of its own (closed by its `with` block): for one-off calls like the reason
    pull. Deliveries use provider_session."""
    session = _TimeoutSession(timeout)
    if auth is not None:
        session.auth = auth
    if headers:
        session.headers.update(headers)
    return session


class _PooledSession(_TimeoutSession):
    """The shared session of one provider kind in one process. What requests reads from the
    environment for each request (proxies, NO_PROXY, REQUESTS_CA_BUNDLE: a scan of the whole
    environment, twice) is read once per host and kept for the life of the process."""

    def __init__(self):
        super().__init__(DEFAULT_TIMEOUT)
        # Cookies belong to one delivery's calls (CallSession), never to the next one.
        self.cookies = RequestsCookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        self._environment: dict[tuple, dict] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if proxies:  # set by the caller: nothing to keep
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        key = (urlsplit(url)[:2], stream, verify, cert)
        found = self._environment.get(key)
        if found is None:
            found = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = found
        return {**found, "proxies": dict(found["proxies"])}


_pools: dict[tuple[int, str], requests.Session] = {}
_pools_lock = threading.Lock()


def _pool(kind: str) -> requests.Session:
    key = (os.getpid(), kind)
    pool = _pools.get(key)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = _PooledSession()
    return pool


def close_pools() -> None:
    """Close this process's pooled connections (tests; a worker shutting down)."""
    with _pools_lock:
        for (pid, _kind), pool in list(_pools.items()):
            if pid == os.getpid():
                pool.close()
        _pools.clear()


class CallSession:
    """One delivery's calls over the process's pooled connections to one provider: the same
    interface as build_session's session for what adapters use (request, headers, auth, hooks,
    a `with` block), with its own timeout, auth, headers, hooks and cookies. Leaving the `with`
    block keeps the connections open for the next delivery."""

    def __init__(self, pool: requests.Session, *, timeout: float, auth=None, headers=None):
        self.pool = pool
        self.timeout = timeout
        self.auth = auth
        self.headers = CaseInsensitiveDict(headers or {})
        self.hooks: dict[str, list] = {"response": []}
        self.cookies = RequestsCookieJar()

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("auth", self.auth)
        kwargs["headers"] = {**self.headers, **(kwargs.get("headers") or {})}
        kwargs.setdefault("hooks", {"response": list(self.hooks["response"])})
        kwargs.setdefault("cookies", self.cookies)
        response = self.pool.request(method, url, **kwargs)
        self.cookies.update(response.cookies)
        return response

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        """Nothing to close: the connections stay in the process's pool."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def provider_session(
    kind: str, *, timeout: float = DEFAULT_TIMEOUT, auth=None, headers=None
) -> CallSession:
    """The calls of one delivery to provider `kind`, over this process's pooled connections."""
    return CallSession(_pool(kind), timeout=timeout, auth=auth, headers=headers)


def excerpt(text, limit: int = 2000) -> str:
    text = text if isinstance(text, str) else repr(text)
    return text if len(text) <= limit else text[:limit] + "…"
