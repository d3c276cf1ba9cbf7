"""A strict fake of Akinon Omnitron's cancellation-reason API, on loopback.

Contract: docs/contracts/akinon/NOTES.md and docs/contracts/akinon/cancellation_reason.schema.json
(its guesses: docs/contracts/akinon/GUESSES.md). Serves `GET /api/v1/cancellation_reasons/`
(paginated: count/next/previous/results, `?page=N`) and `GET /api/v1/cancellation_reasons/{pk}/`
in Omnitron's own shape (`pk`, `order`, `translations`, …), answers 401 `{"detail": …}` unless
`Authorization: Token <token>` is exact and 404 `{"detail": …}` for a pk it doesn't hold. Every
reason it is given is checked against the schema (ValueError otherwise): it serves only what
Omnitron can. Its `next`/`previous` links are built as Django builds them, from the Host header
with the scheme it sees (plain http, also behind a TLS proxy), unless `link_base_url` says
otherwise: another host or scheme, for the tests of where the adapter may follow a link.
`tls=<ssl.SSLContext>` serves https. It can be told to misbehave:

    with OmnitronFake(catalog=make_catalog(250), page_size=100) as fake:
        fake.server_error_on_page = 2        # HTTP 500 (or fake.server_error_status) on page 2
        fake.slow_on_page = 1                # page 1 waits fake.slow_seconds before answering
        fake.malformed_on_page = 3           # page 3 is not JSON
        fake.loop_on_page = 3                # page 3's `next` points back to page 1
        fake.link_base_url = "http://127.0.0.2:9"  # next/previous on another host
        fake.reset_faults()

Run it on its fixed port for a demo: `python manage.py run_fakes --only omnitron` (port 8101)
(then OMNITRON_BASE_URL=http://127.0.0.1:8101 OMNITRON_TOKEN=omnitron-fake-token).
"""

from __future__ import annotations

import copy
import re
import ssl
import uuid
from datetime import UTC, datetime, timedelta

from providers import contracts

from .server import FakeRequest, FakeResponse, FakeServer

SCHEMA_FILE = "akinon/cancellation_reason.schema.json"

DEFAULT_TOKEN = "omnitron-fake-token"  # noqa: S105 - a fake's well-known test credential
LIST_PATH = "/api/v1/cancellation_reasons/"
DETAIL_PATH = re.compile(r"^/api/v1/cancellation_reasons/(\d+)/?$")


def omnitron_schema(name: str) -> dict:
    """One of the schema file's $defs (CancellationReason, Page, Detail), ready to validate."""
    return {"$ref": f"#/$defs/{name}", "$defs": contracts.schema(SCHEMA_FILE)["$defs"]}


def contract_errors(body, name: str) -> list[str]:
    """How `body` breaks Omnitron's `name` schema; [] when it conforms."""
    return contracts.schema_errors(body, omnitron_schema(name))


def _checked(catalog: list[dict]) -> list[dict]:
    for reason in catalog:
        errors = contract_errors(reason, "CancellationReason")
        if errors:
            raise ValueError(f"Omnitron could not serve {reason!r}: {'; '.join(errors)}")
    return copy.deepcopy(catalog)


def omnitron_reason(
    pk: int,
    subject: str,
    *,
    cancellation_type: str = "cancel",
    order: int = 100,
    is_active: bool = True,
    extra_information_needed: bool = False,
    translations: dict | None = None,
) -> dict:
    """One reason exactly as Omnitron's serializer renders it."""
    stamp = datetime(2023, 7, 4, 10, 30, 31, tzinfo=UTC) + timedelta(seconds=pk)
    return {
        "pk": pk,
        "cancellation_type": cancellation_type,
        "subject": subject,
        "extra_information_needed": extra_information_needed,
        "order": order,
        "is_active": is_active,
        "send_to_remote": False,
        "send_to_oms": True,
        "translations": translations,
        "uuid": str(uuid.UUID(int=pk)),
        "created_date": stamp.isoformat().replace("+00:00", "Z"),
        "modified_date": stamp.isoformat().replace("+00:00", "Z"),
    }


def demo_catalog() -> list[dict]:
    """Twelve reasons as a Turkish shop would have them, with German and English translations."""
    rows = [
        ("Yanlış ürün aldım.", "Falsches Produkt gekauft.", "I bought the wrong product.", {}),
        (
            "Ürünü satın almaktan vazgeçtim.",
            "Ich habe es mir anders überlegt.",
            "I changed my mind.",
            {},
        ),
        ("Ürün çok pahalı.", "Das Produkt ist zu teuer.", "The product is too expensive.", {}),
        (
            "Teslimat çok gecikti.",
            "Die Lieferung kam zu spät.",
            "The delivery took too long.",
            {},
        ),
        (
            "Ürün hasarlı geldi.",
            "Die Ware kam beschädigt an.",
            "The product arrived damaged.",
            {"extra_information_needed": True},
        ),
        (
            "Ürün açıklamadaki gibi değil.",
            "Die Ware entspricht nicht der Beschreibung.",
            "The product is not as described.",
            {"extra_information_needed": True},
        ),
        (
            "Daha ucuzunu buldum.",
            "Ich habe es günstiger gefunden.",
            "I found it cheaper elsewhere.",
            {},
        ),
        ("Ürünü kullanmadım.", "Ich habe das Produkt nicht genutzt.", "I did not use it.", {}),
        (
            "Ödeme sorunu yaşadım.",
            "Es gab ein Problem mit der Zahlung.",
            "There was a payment problem.",
            {"cancellation_type": "refund"},
        ),
        (
            "Sözleşme süresi doldu.",
            "Der Vertrag ist abgelaufen.",
            "The contract expired.",
            {"cancellation_type": "refund", "order": 200},
        ),
        (
            "Sipariş yanlışlıkla verildi.",
            "Die Bestellung war ein Versehen.",
            "The order was placed by mistake.",
            {"order": 50},
        ),
        ("Diğer", "Sonstiges", "Other", {"order": 900}),
    ]
    return [
        omnitron_reason(
            pk,
            tr,
            translations={"tr": {"subject": tr}, "de": {"subject": de}, "en": {"subject": en}},
            **extra,
        )
        for pk, (tr, de, en, extra) in enumerate(rows, start=1)
    ]


def make_catalog(size: int, *, first_pk: int = 1) -> list[dict]:
    """`size` distinct reasons with non-ASCII subjects, for tests and benchmarks."""
    words = ["Yanlış ürün", "Ürün iadesi", "Lieferung verspätet", "Größe passt nicht", "Çok pahalı"]
    return [
        omnitron_reason(
            pk,
            f"{words[pk % len(words)]} #{pk}",
            order=pk % 7 * 10,
            cancellation_type="refund" if pk % 5 == 0 else "cancel",
            extra_information_needed=pk % 11 == 0,
        )
        for pk in range(first_pk, first_pk + size)
    ]


class OmnitronFake(FakeServer):
    def __init__(
        self,
        *,
        catalog: list[dict] | None = None,
        token: str = DEFAULT_TOKEN,
        page_size: int = 100,
        port: int = 0,
        link_base_url: str | None = None,
        tls: ssl.SSLContext | None = None,
    ):
        super().__init__(port=port)
        self.catalog: list[dict] = _checked(catalog if catalog is not None else [])
        self.token = token
        self.page_size = page_size
        self.tls = tls
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.reset_faults()
        self.link_base_url = link_base_url

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def reset_faults(self):
        with self.lock:
            self.server_error_on_page: int | None = None
            self.server_error_status = 500
            self.slow_on_page: int | None = None
            self.slow_seconds = 2.0
            self.malformed_on_page: int | None = None
            self.loop_on_page: int | None = None
            # scheme://host[:port] of the next/previous links; None: http:// + the Host header.
            self.link_base_url: str | None = None

    # --- changing the upstream catalog from a test --------------------------------------------
    def set_catalog(self, catalog: list[dict]):
        with self.lock:
            self.catalog = _checked(catalog)

    def update_reason(self, pk: int, **changes):
        with self.lock:
            for index, reason in enumerate(self.catalog):
                if reason["pk"] == pk:
                    (self.catalog[index],) = _checked([{**reason, **changes}])
                    return self.catalog[index]
        raise KeyError(pk)

    def remove_reason(self, pk: int):
        with self.lock:
            self.catalog = [reason for reason in self.catalog if reason["pk"] != pk]

    @property
    def page_count(self) -> int:
        return max(1, -(-len(self.catalog) // self.page_size))

    # --- the API ------------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.headers.get("authorization") != f"Token {self.token}":
            return FakeResponse.json(
                {"detail": "Invalid token."}
                if request.headers.get("authorization")
                else {"detail": "Authentication credentials were not provided."},
                status=401,
                headers={"WWW-Authenticate": "Token"},
            )
        if request.method != "GET":
            return FakeResponse.json(
                {"detail": f'Method "{request.method}" not allowed.'}, status=405
            )
        if request.path == LIST_PATH:
            return self._list(request)
        match = DETAIL_PATH.match(request.path)
        if match:
            with self.lock:
                found = [r for r in self.catalog if r["pk"] == int(match.group(1))]
            if found:
                return FakeResponse.json(found[0])
        return FakeResponse.json({"detail": "Not found."}, status=404)

    def _list(self, request: FakeRequest) -> FakeResponse:
        raw_page = request.param("page", "1")
        if not raw_page.isdigit() or not 1 <= int(raw_page) <= self.page_count:
            return FakeResponse.json({"detail": "Invalid page."}, status=404)
        page = int(raw_page)
        with self.lock:
            delay = self.slow_seconds if self.slow_on_page == page else 0.0
            if self.server_error_on_page == page:
                return FakeResponse.raw(
                    b"<h1>Server Error (500)</h1>",
                    status=self.server_error_status,
                    content_type="text/html",
                    delay=delay,
                )
            if self.malformed_on_page == page:
                return FakeResponse.raw(b'{"count": 3, "results": [{"pk": 1,', delay=delay)
            start = (page - 1) * self.page_size
            results = copy.deepcopy(self.catalog[start : start + self.page_size])
            count = len(self.catalog)
            next_page = page + 1 if page < self.page_count else None
            if self.loop_on_page == page:
                next_page = 1
            link_base = self.link_base_url
        host = request.headers.get("host") or f"{self.host}:{self.port}"
        base = f"{(link_base or f'http://{host}').rstrip('/')}{LIST_PATH}"
        return FakeResponse.json(
            {
                "count": count,
                "next": f"{base}?page={next_page}" if next_page else None,
                "previous": (base if page == 2 else f"{base}?page={page - 1}")
                if page > 1
                else None,
                "results": results,
            },
            delay=delay,
        )
