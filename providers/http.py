"""The one place outgoing HTTP sessions are built: default timeout, no redirects, no retries
(retrying is the dispatcher's job, with backoff and a record of every attempt)."""

import requests
from requests.adapters import HTTPAdapter

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
    session = _TimeoutSession(timeout)
    if auth is not None:
        session.auth = auth
    if headers:
        session.headers.update(headers)
    return session


def excerpt(text, limit: int = 2000) -> str:
    text = text if isinstance(text, str) else repr(text)
    return text if len(text) <= limit else text[:limit] + "…"
