"""A strict fake of Akinon Omnitron's cancellation-reason API, on loopback.

Serves `GET /api/v1/cancellation_reasons/` (paginated: count/next/previous/results, `?page=N`)
and `GET /api/v1/cancellation_reasons/{pk}/` in Omnitron's own shape (`pk`, `order`,
`translations`, …), answers 401 `{"detail": …}` unless `Authorization: Token <token>` is exact,
and can be told to misbehave:

    with OmnitronFake(catalog=make_catalog(250), page_size=100) as fake:
        fake.server_error_on_page = 2        # HTTP 500 (or fake.server_error_status) on page 2
        fake.slow_on_page = 1                # page 1 waits fake.slow_seconds before answering
        fake.malformed_on_page = 3           # page 3 is not JSON
        fake.loop_on_page = 3                # page 3's `next` points back to page 1
        fake.reset_faults()

Run it on its fixed port for a demo: `python manage.py run_fakes --only omnitron` (port 8101)
(then OMNITRON_BASE_URL=http://127.0.0.1:8101 OMNITRON_TOKEN=omnitron-fake-token).
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import UTC, datetime, timedelta

from .server import FakeRequest, FakeResponse, FakeServer

DEFAULT_TOKEN = "omnitron-fake-token"  # noqa: S105 - a fake's well-known test credential
LIST_PATH = "/api/v1/cancellation_reasons/"
DETAIL_PATH = re.compile(r"^/api/v1/cancellation_reasons/(\d+)/?$")


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
    ):
        super().__init__(port=port)
        self.catalog: list[dict] = copy.deepcopy(catalog if catalog is not None else [])
        self.token = token
        self.page_size = page_size
        self.reset_faults()

    def reset_faults(self):
        with self.lock:
            self.server_error_on_page: int | None = None
            self.server_error_status = 500
            self.slow_on_page: int | None = None
            self.slow_seconds = 2.0
            self.malformed_on_page: int | None = None
            self.loop_on_page: int | None = None

    # --- changing the upstream catalog from a test --------------------------------------------
    def set_catalog(self, catalog: list[dict]):
        with self.lock:
            self.catalog = copy.deepcopy(catalog)

    def update_reason(self, pk: int, **changes):
        with self.lock:
            for reason in self.catalog:
                if reason["pk"] == pk:
                    reason.update(changes)
                    return reason
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
        base = f"http://{request.headers.get('host') or f'{self.host}:{self.port}'}{LIST_PATH}"
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
