"""The German and Turkish catalogs are complete: every message translated, none fuzzy, the
placeholders and HTML tags of each translation the same as its message's, and the committed .mo
compiled from the .po as it is now."""

import ast
import gettext
import re
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings

LANGUAGES = [code for code, _name in settings.LANGUAGES if code != "en"]
LOCALE_DIR = Path(settings.LOCALE_PATHS[0])

# %(name)s, %s, %d, … (not %%); {name} for python-brace-format; HTML tags.
PERCENT = re.compile(r"%(?:\([^)]*\))?[#0 +-]*\d*(?:\.\d+)?[sdifrxXeEgGc]")
BRACE = re.compile(r"(?<!\{)\{[^{}]*\}(?!\})")
TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def parse_po(path: Path) -> list[dict]:
    """The entries of a .po file: msgid, msgid_plural, msgstr (index → text), flags, line."""
    entries = []
    text = path.read_text(encoding="utf-8")
    for match in re.finditer(r"(?:[^\n]+\n?)+", text):
        block = match.group(0)
        entry = {"flags": set(), "msgstr": {}, "line": text.count("\n", 0, match.start()) + 1}
        key = None
        for line in block.splitlines():
            if line.startswith("#~"):
                entry["obsolete"] = True
            elif line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#"):
                continue
            elif found := re.match(
                r"(msgctxt|msgid_plural|msgid|msgstr)(?:\[(\d+)\])? (\".*\")$", line
            ):
                name, index, quoted = found.groups()
                key = ("msgstr", int(index or 0)) if name == "msgstr" else (name, None)
                _store(entry, key, ast.literal_eval(quoted))
            elif line.startswith('"') and key:
                _store(entry, key, ast.literal_eval(line), append=True)
        if "msgid" in entry and not entry.get("obsolete"):
            entries.append(entry)
    return entries


def _store(entry: dict, key: tuple, text: str, append: bool = False) -> None:
    name, index = key
    target = entry["msgstr"] if name == "msgstr" else entry
    slot = index if name == "msgstr" else name
    target[slot] = target.get(slot, "") + text if append else text


def messages(language: str) -> list[dict]:
    return [e for e in parse_po(LOCALE_DIR / language / "LC_MESSAGES" / "django.po") if e["msgid"]]


def describe(entry: dict) -> str:
    return f"line {entry['line']}: {entry['msgid'][:70]!r}"


def placeholders(text: str, flags: set) -> Counter:
    found = (
        Counter(PERCENT.findall(text.replace("%%", ""))) if "python-format" in flags else Counter()
    )
    if "python-brace-format" in flags:
        found.update(BRACE.findall(text))
    return found


@pytest.fixture(scope="module", params=LANGUAGES)
def catalog(request):
    return request.param, messages(request.param)


def test_there_are_german_and_turkish_catalogs_with_messages():
    assert set(LANGUAGES) == {"de", "tr"}
    for language in LANGUAGES:
        assert len(messages(language)) > 100


def test_every_message_is_translated(catalog):
    language, entries = catalog
    untranslated = [describe(e) for e in entries if not all(e["msgstr"].values())]
    assert untranslated == [], f"{language}: {len(untranslated)} untranslated"


def test_no_translation_is_fuzzy(catalog):
    language, entries = catalog
    fuzzy = [describe(e) for e in entries if "fuzzy" in e["flags"]]
    assert fuzzy == [], f"{language}: {len(fuzzy)} fuzzy"


def test_plural_messages_have_every_plural_form(catalog):
    language, entries = catalog
    header = next(e for e in parse_po(LOCALE_DIR / language / "LC_MESSAGES" / "django.po"))
    nplurals = int(re.search(r"nplurals=(\d+)", header["msgstr"][0]).group(1))
    wrong = [
        describe(e)
        for e in entries
        if "msgid_plural" in e and sorted(e["msgstr"]) != list(range(nplurals))
    ]
    assert wrong == []


def keeps_placeholders_and_tags(entry: dict) -> bool:
    flags = entry["flags"]
    if "msgid_plural" not in entry:
        original, translation = entry["msgid"], entry["msgstr"][0]
        return placeholders(original, flags) == placeholders(translation, flags) and Counter(
            TAG.findall(original)
        ) == Counter(TAG.findall(translation))
    # A singular form may leave out the count ("the newest order") but never invent a
    # placeholder; the last form (used for many) carries every one of the plural message.
    plural = set(placeholders(entry["msgid_plural"], flags))
    allowed = set(placeholders(entry["msgid"], flags)) | plural
    forms = [set(placeholders(entry["msgstr"][i], flags)) for i in sorted(entry["msgstr"])]
    return all(form <= allowed for form in forms) and plural <= forms[-1]


def test_translations_keep_the_placeholders_and_tags(catalog):
    language, entries = catalog
    wrong = [describe(e) for e in entries if not keeps_placeholders_and_tags(e)]
    assert wrong == [], f"{language}: placeholders or tags differ"


def test_the_committed_mo_is_compiled_from_the_po(catalog):
    language, entries = catalog
    with open(LOCALE_DIR / language / "LC_MESSAGES" / "django.mo", "rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    stale = []
    for entry in entries:
        context = entry.get("msgctxt")
        if "msgid_plural" in entry:
            for count, index in ((1, 0), (5, max(entry["msgstr"]))):
                args = (entry["msgid"], entry["msgid_plural"], count)
                got = compiled.npgettext(context, *args) if context else compiled.ngettext(*args)
                if got != entry["msgstr"][index]:
                    stale.append(describe(entry))
        else:
            args = (entry["msgid"],)
            got = compiled.pgettext(context, *args) if context else compiled.gettext(*args)
            if got != entry["msgstr"][0]:
                stale.append(describe(entry))
    assert stale == [], f"{language}: run compilemessages"
