"""Akinon Omnitron, the master of the cancellation-reason catalog.

Contract: docs/contracts/akinon/NOTES.md (Omnitron's "Omnitron API" OpenAPI excerpts) and
docs/contracts/akinon/cancellation_reason.schema.json; what they leave open is in
docs/contracts/akinon/GUESSES.md.

Storno only reads from it: `GET /api/v1/cancellation_reasons/` is a paginated list in the usual
`count/next/previous/results` envelope, authenticated with `Authorization: Token <key>`. The
adapter follows `next` to the end, but only on the configured host and port (see
`next_page_url`: the token never goes anywhere else), and returns every reason, or raises
OmnitronError naming what went wrong (401, 5xx, a timeout, bad JSON, a `next` that loops or
leaves the host…). `cancellation_type` is passed on as Omnitron sent it: which values Storno
knows is reasons/sync.py's decision, as is turning the reasons into rows.

Configuration comes from the environment (or Django settings of the same names):
OMNITRON_BASE_URL (e.g. https://omnitron.example.com), OMNITRON_TOKEN, OMNITRON_TIMEOUT (seconds).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from django.conf import settings
from django.utils.translation import gettext as _

from .base import ProviderAdapter, ProviderConfig
from .http import DEFAULT_TIMEOUT, build_session, excerpt

REASONS_PATH = "/api/v1/cancellation_reasons/"
SUBJECT_MAX_LENGTH = 100
MAX_PAGES = 10_000  # a catalog is small; anything longer is a server that never ends


class OmnitronError(Exception):
    """A pull that could not be completed. `cause` is a short machine-readable word."""

    UNAUTHORIZED = "unauthorized"
    SERVER_ERROR = "server_error"
    UNEXPECTED_STATUS = "unexpected_status"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    BAD_JSON = "bad_json"
    BAD_DATA = "bad_data"
    PAGINATION_LOOP = "pagination_loop"
    FOREIGN_NEXT_LINK = "foreign_next_link"
    INCOMPLETE = "incomplete"
    NOT_CONFIGURED = "not_configured"

    def __init__(self, message: str, *, cause: str, status_code: int | None = None, url=""):
        super().__init__(message)
        self.message = message
        self.cause = cause
        self.status_code = status_code
        self.url = url

    def __str__(self):
        return self.message


@dataclass(frozen=True)
class OmnitronReason:
    """One upstream reason, in Storno's field names (pk → omnitron_id, order → ordering)."""

    omnitron_id: int
    cancellation_type: str
    subject: str
    extra_information_needed: bool
    ordering: int
    is_active: bool
    translations: dict  # {"de": "…", "en": "…"}: only the languages Omnitron sent


def config_from_env() -> ProviderConfig:
    def value(name, default=""):
        return str(getattr(settings, name, "") or os.environ.get(name, "") or default)

    try:
        timeout = float(value("OMNITRON_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        timeout = DEFAULT_TIMEOUT
    return ProviderConfig(
        kind="omnitron",
        base_url=value("OMNITRON_BASE_URL").rstrip("/"),
        token=value("OMNITRON_TOKEN"),
        timeout=timeout if timeout > 0 else DEFAULT_TIMEOUT,
    )


class OmnitronAdapter(ProviderAdapter):
    kind = "omnitron"
    label = "Akinon Omnitron"

    def __init__(self, config: ProviderConfig | None = None):
        super().__init__(config or config_from_env())

    def fetch_cancellation_reasons(self) -> list[OmnitronReason]:
        """Every reason of the catalog, following `next` to the last page."""
        if not self.config.is_configured:
            raise OmnitronError(
                _("Omnitron is not configured: set OMNITRON_BASE_URL and OMNITRON_TOKEN."),
                cause=OmnitronError.NOT_CONFIGURED,
            )
        session = build_session(
            timeout=self.config.timeout,
            headers={
                "Authorization": f"Token {self.config.token}",
                "Accept": "application/json",
            },
        )
        url = self.config.base_url + REASONS_PATH
        seen_urls: set[str] = set()
        reasons: list[OmnitronReason] = []
        expected_count = None
        with session:
            while url:
                if url in seen_urls or len(seen_urls) >= MAX_PAGES:
                    raise OmnitronError(
                        _("Omnitron's pagination loops: page %(url)s was already read.")
                        % {"url": url},
                        cause=OmnitronError.PAGINATION_LOOP,
                        url=url,
                    )
                seen_urls.add(url)
                page = self._get_page(session, url)
                if expected_count is None:
                    expected_count = page["count"]
                start = len(reasons)
                reasons += [
                    _parse_reason(item, index=start + i, url=url)
                    for i, item in enumerate(page["results"])
                ]
                url = next_page_url(page.get("next"), page_url=url, base_url=self.config.base_url)
        if expected_count is not None and expected_count != len(reasons):
            # A catalog changing between pages, or a server dropping a page: applying half a
            # catalog would deactivate the rest, so refuse and let the next pull try again.
            raise OmnitronError(
                _("Omnitron announced %(count)s reasons but its pages held %(found)s.")
                % {"count": expected_count, "found": len(reasons)},
                cause=OmnitronError.INCOMPLETE,
            )
        return reasons

    def _get_page(self, session: requests.Session, url: str) -> dict:
        try:
            response = session.get(url)
        except requests.Timeout as exc:
            raise OmnitronError(
                _("Omnitron did not answer within %(seconds)s seconds (%(url)s).")
                % {"seconds": self.config.timeout, "url": url},
                cause=OmnitronError.TIMEOUT,
                url=url,
            ) from exc
        except requests.RequestException as exc:
            raise OmnitronError(
                _("Could not reach Omnitron at %(url)s: %(error)s") % {"url": url, "error": exc},
                cause=OmnitronError.CONNECTION,
                url=url,
            ) from exc
        status = response.status_code
        if status in (401, 403):
            raise OmnitronError(
                _("Omnitron refused the token (HTTP %(status)s): check OMNITRON_TOKEN.")
                % {"status": status},
                cause=OmnitronError.UNAUTHORIZED,
                status_code=status,
                url=url,
            )
        if status >= 500:
            raise OmnitronError(
                _("Omnitron failed with HTTP %(status)s on %(url)s: %(body)s")
                % {"status": status, "url": url, "body": excerpt(response.text, 300)},
                cause=OmnitronError.SERVER_ERROR,
                status_code=status,
                url=url,
            )
        if status != 200:
            raise OmnitronError(
                _("Omnitron answered HTTP %(status)s on %(url)s: %(body)s")
                % {"status": status, "url": url, "body": excerpt(response.text, 300)},
                cause=OmnitronError.UNEXPECTED_STATUS,
                status_code=status,
                url=url,
            )
        try:
            page = json.loads(response.content)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise OmnitronError(
                _("Omnitron sent a page that is not valid JSON (%(url)s): %(error)s")
                % {"url": url, "error": exc},
                cause=OmnitronError.BAD_JSON,
                status_code=status,
                url=url,
            ) from exc
        if (
            not isinstance(page, dict)
            or not isinstance(page.get("results"), list)
            or not _is_int(page.get("count"))
            or not isinstance(page.get("next"), str | None)
        ):
            raise OmnitronError(
                _("Omnitron sent a page without the count/next/results envelope (%(url)s).")
                % {"url": url},
                cause=OmnitronError.BAD_DATA,
                status_code=status,
                url=url,
            )
        return page


DEFAULT_PORTS = {"http": 80, "https": 443}


def _port_key(parts) -> int | None:
    """The port a URL names, None for its scheme's default: http://h, http://h:80 and
    https://h:443 are all "the default port", so a scheme change alone is no port change."""
    port = parts.port
    return None if port in (None, DEFAULT_PORTS.get(parts.scheme)) else port


def next_page_url(next_value, *, page_url: str, base_url: str) -> str | None:
    """The URL to request for a page's `next`, or None at the last page.

    A relative link resolves against the page it came from. The token goes with every request,
    so only a link to the configured host and port is followed; a link on plain http while
    Storno is configured with https (Django behind a TLS proxy builds its links with the scheme
    it sees: seed 004's own example answers an https request with an http `next`) is followed
    over https, never over http. Anything else raises OmnitronError(FOREIGN_NEXT_LINK).
    """
    if not next_value:
        return None
    link = urlsplit(urljoin(page_url, next_value))
    base = urlsplit(base_url)
    why = None
    if link.scheme not in DEFAULT_PORTS:
        why = _("it is not an http or https link")
    elif (link.hostname or "") != (base.hostname or ""):
        why = _("it is on another host than OMNITRON_BASE_URL (%(host)s)") % {"host": base.hostname}
    elif _port_key(link) != _port_key(base):
        why = _("it is on another port than OMNITRON_BASE_URL (%(port)s)") % {
            "port": base.port or DEFAULT_PORTS.get(base.scheme)
        }
    if why:
        raise OmnitronError(
            _(
                "Omnitron's page %(page)s links its next page to %(link)s, and %(why)s: the "
                "pull stopped there so that the token is not sent anywhere else."
            )
            % {"page": page_url, "link": link.geturl(), "why": why},
            cause=OmnitronError.FOREIGN_NEXT_LINK,
            url=page_url,
        )
    # http → https is an upgrade and fine; https → http never: the link is fetched over TLS.
    scheme = "https" if "https" in (base.scheme, link.scheme) else "http"
    port = _port_key(link)
    netloc = link.hostname + (f":{port}" if port else "")
    if ":" in link.hostname:  # an IPv6 literal
        netloc = f"[{link.hostname}]" + (f":{port}" if port else "")
    return urlunsplit((scheme, netloc, link.path, link.query, ""))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_reason(item, *, index: int, url: str) -> OmnitronReason:
    def bad(message):
        where = _("reason #%(index)s") % {"index": index + 1}
        if isinstance(item, dict) and "pk" in item:
            where = _("reason pk %(pk)s") % {"pk": item["pk"]}
        return OmnitronError(
            f"{where}: {message}", cause=OmnitronError.BAD_DATA, status_code=200, url=url
        )

    if not isinstance(item, dict):
        raise bad(_("not an object"))
    pk = item.get("pk", item.get("id"))
    if not _is_int(pk) or pk <= 0:
        raise bad(_("`pk` must be a positive integer"))
    subject = item.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        raise bad(_("`subject` must be a non-empty string"))
    subject = subject.strip()
    if len(subject) > SUBJECT_MAX_LENGTH:
        raise bad(_("`subject` is longer than %(max)s characters") % {"max": SUBJECT_MAX_LENGTH})
    cancellation_type = item.get("cancellation_type")
    # Any string: a value Storno doesn't know is reported by the sync, not a failed pull.
    if not isinstance(cancellation_type, str):
        raise bad(_("`cancellation_type` must be a string"))
    extra = item.get("extra_information_needed", False)
    is_active = item.get("is_active", True)
    if not isinstance(extra, bool) or not isinstance(is_active, bool):
        raise bad(_("`extra_information_needed` and `is_active` must be true or false"))
    ordering = item.get("order", item.get("ordering", 100))
    if not _is_int(ordering) or not -(2**31) <= ordering < 2**31:
        raise bad(_("`order` must be an integer"))
    return OmnitronReason(
        omnitron_id=pk,
        cancellation_type=cancellation_type.strip(),
        subject=subject,
        extra_information_needed=extra,
        ordering=ordering,
        is_active=is_active,
        translations=_parse_translations(item.get("translations"), bad),
    )


def _parse_translations(value, bad) -> dict:
    """Omnitron's `translations`: {"de": {"subject": "…"}, …} (a bare string is accepted too)."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise bad(_("`translations` must be an object"))
    found = {}
    for language, entry in value.items():
        text = entry.get("subject") if isinstance(entry, dict) else entry
        if not isinstance(text, str) or not text.strip():
            continue
        text = text.strip()
        if len(text) > SUBJECT_MAX_LENGTH:
            raise bad(
                _("the %(language)s subject is longer than %(max)s characters")
                % {"language": language, "max": SUBJECT_MAX_LENGTH}
            )
        found[str(language).split("-")[0].lower()] = text
    return found
