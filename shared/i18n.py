"""One message catalogue for every service's API text: problem details, field reasons,
upload reports. Chinese by default, English on `Accept-Language: en`.

The code writes its messages in English (f-strings included); they are translated at the
edge, when a response is rendered, keyed by the English text. The catalogue
(`shared/locale/zh_CN/LC_MESSAGES/messages.po`, compiled to `.mo` by `scripts/install`
and again at first use when missing or stale) holds the message templates as the code
writes them: `patent {appno} is unknown` → `专利 {appno} 不存在`. A rendered message is
matched against the templates, and the values in its braces are carried into the
translation. A detail made of several reasons ("a: x; b: y") is translated reason by
reason, keeping the field names. Unknown messages stay in English.

`scripts/extract_messages.py` collects the messages from the code into the catalogue;
tests/test_i18n.py fails when one has no Chinese translation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
DEFAULT = "zh_CN"
LANGUAGES = ("zh_CN", "en")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\[\]]*): (.+)$", re.S)
_ITEM_PREFIX = re.compile(r"^(\[\d+\] )(.+)$", re.S)  # "[2] reason": one item of a list

# pydantic's own messages by error type (its English templates, filled from `ctx`); the
# catalogue translates each template.
PYDANTIC_TEMPLATES: dict[str, str] = {
    "missing": "Field required",
    "extra_forbidden": "Extra inputs are not permitted",
    "string_type": "Input should be a valid string",
    "string_too_short": "String should have at least {min_length} characters",
    "string_too_long": "String should have at most {max_length} characters",
    "string_pattern_mismatch": "String should match pattern '{pattern}'",
    "int_type": "Input should be a valid integer",
    "int_parsing": "Input should be a valid integer, unable to parse string as an integer",
    "int_from_float": "Input should be a valid integer, got a number with a fractional part",
    "float_type": "Input should be a valid number",
    "float_parsing": "Input should be a valid number, unable to parse string as a number",
    "decimal_type": "Decimal input should be an integer, float, string or Decimal object",
    "decimal_parsing": "Input should be a valid decimal",
    "decimal_max_digits": "Decimal input should have no more than {max_digits} digits in total",
    "decimal_max_places": "Decimal input should have no more than {decimal_places} decimal places",
    "bool_type": "Input should be a valid boolean",
    "bool_parsing": "Input should be a valid boolean, unable to interpret input",
    "greater_than": "Input should be greater than {gt}",
    "greater_than_equal": "Input should be greater than or equal to {ge}",
    "less_than": "Input should be less than {lt}",
    "less_than_equal": "Input should be less than or equal to {le}",
    "list_type": "Input should be a valid list",
    "too_short": "List should have at least {min_length} items after validation, not {actual_length}",
    "too_long": "List should have at most {max_length} items after validation, not {actual_length}",
    "dict_type": "Input should be a valid dictionary",
    "model_type": "Input should be a valid dictionary or instance of {class_name}",
    "model_attributes_type": "Input should be a valid dictionary or object to extract fields from",
    "date_type": "Input should be a valid date",
    "date_parsing": "Input should be a valid date in the format YYYY-MM-DD, {error}",
    "date_from_datetime_parsing": "Input should be a valid date or datetime, {error}",
    "date_from_datetime_inexact": "Datetimes provided to dates should have zero time - e.g. be exact dates",
    "datetime_type": "Input should be a valid datetime",
    "datetime_parsing": "Input should be a valid datetime, {error}",
    "datetime_from_date_parsing": "Input should be a valid datetime or date, {error}",
    "enum": "Input should be {expected}",
    "literal_error": "Input should be {expected}",
    "json_invalid": "Invalid JSON: {error}",
    "value_error": "Value error, {error}",
    "url_parsing": "Input should be a valid URL, {error}",
}

# Problem titles (shared/errors.py) and Starlette's own details.
TITLES = (
    "Bad request", "Not found", "Unauthorized", "Forbidden", "Conflict", "Payload too large",
    "Unsupported media type", "Service unavailable", "Validation failed", "Too many requests",
    "Method not allowed", "Error", "Internal server error", "Not Found", "Method Not Allowed",
)  # fmt: skip


def N_(message: str) -> str:
    """Marks a message built outside a raise (shared.i18n_extract collects it)."""
    return message


def compile_catalogues(locale_dir: Path = LOCALE_DIR) -> None:
    """Compile each `.po` whose `.mo` is missing or older (idempotent, cheap)."""
    for po in locale_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as f:
            catalog = read_po(f)
        tmp = mo.with_suffix(".mo.tmp")
        with tmp.open("wb") as f:
            write_mo(f, catalog)
        tmp.replace(mo)


@dataclass(frozen=True)
class _Template:
    regex: re.Pattern[str]
    placeholders: tuple[str, ...]
    translated: str


@dataclass(frozen=True)
class _Catalogue:
    exact: dict[str, str]
    templates: tuple[_Template, ...]


def _template_regex(msgid: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    parts = _PLACEHOLDER.split(msgid)
    holders = tuple(_PLACEHOLDER.findall(msgid))
    pattern = "(.+?)".join(re.escape(p) for p in parts)
    return re.compile(f"^{pattern}$", re.S), holders


@cache
def _catalogue(lang: str) -> _Catalogue:
    if lang == "en":
        return _Catalogue({}, ())
    compile_catalogues()
    trans = Translations.load(str(LOCALE_DIR), [lang], domain=DOMAIN)
    messages: dict[Any, str] = getattr(trans, "_catalog", {})
    exact: dict[str, str] = {}
    templates: list[_Template] = []
    for msgid, msgstr in messages.items():
        if not isinstance(msgid, str) or not msgid or not msgstr:
            continue
        exact[msgid] = msgstr
        if _PLACEHOLDER.search(msgid):
            regex, holders = _template_regex(msgid)
            templates.append(_Template(regex, holders, msgstr))
    # the most specific template (most literal text) wins
    templates.sort(key=lambda t: -len(_PLACEHOLDER.sub("", t.regex.pattern)))
    return _Catalogue(exact, tuple(templates))


def translations(lang: str) -> NullTranslations:
    if lang == "en":
        return NullTranslations()
    compile_catalogues()
    return Translations.load(str(LOCALE_DIR), [lang], domain=DOMAIN)


def choose_language(accept_language: str | None) -> str:
    """`zh_CN` unless the header prefers English (q-values respected)."""
    best: tuple[float, int, str] | None = None
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag:
            continue
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        lang = "en" if tag.startswith("en") else "zh_CN" if tag.startswith("zh") else None
        if lang and q > 0 and (best is None or (q, -i) > (best[0], best[1])):
            best = (q, -i, lang)
    return best[2] if best else DEFAULT


def _one(text: str, lang: str) -> str | None:
    cat = _catalogue(lang)
    if text in cat.exact:
        return cat.exact[text]
    for t in cat.templates:
        m = t.regex.match(text)
        if m is None or any(
            "; " in v and "join" not in h for h, v in zip(t.placeholders, m.groups(), strict=True)
        ):
            continue  # a value spanning several reasons: they are translated one by one
        out = t.translated
        for holder, value in zip(t.placeholders, m.groups(), strict=True):
            out = out.replace(holder, translate(value, lang))  # nested reasons too
        return out
    m = _FIELD_PREFIX.match(text)
    if m:
        inner = _one(m.group(2), lang)
        if inner is not None:
            return f"{m.group(1)}: {inner}"
    m = _ITEM_PREFIX.match(text)
    if m:
        inner = _one(m.group(2), lang)
        if inner is not None:
            return m.group(1) + inner
    return None


def translate(text: str, lang: str = DEFAULT) -> str:
    """The message in `lang`; English (unchanged) when the catalogue does not know it."""
    if lang == "en" or not text:
        return text
    whole = _one(text, lang)
    if whole is not None:
        return whole
    if "; " in text:
        return "; ".join(_one(p, lang) or p for p in text.split("; "))
    return text


def translate_pydantic(error: dict[str, Any], reason: str, lang: str) -> str:
    """A pydantic error by its type and context; a custom reason by its text."""
    template = PYDANTIC_TEMPLATES.get(str(error.get("type", "")))
    if lang == "en" or template is None or error.get("type") == "value_error":
        return translate(reason, lang)
    ctx = {k: v for k, v in (error.get("ctx") or {}).items()}
    try:
        return translations(lang).gettext(template).format(**ctx)
    except (KeyError, IndexError, ValueError):
        return translate(reason, lang)


def translate_errors(errors: Iterable[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """Per-field (or per-row) errors with their `reason` translated."""
    out = []
    for e in errors:
        e = dict(e)
        if isinstance(e.get("reason"), str):
            e["reason"] = translate(e["reason"], lang)
        out.append(e)
    return out


def translate_report_rows(rows: Iterable[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """An upload report's rows with each error's reason translated (stored in English)."""
    out = []
    for r in rows:
        if r.get("errors"):
            r = {**r, "errors": translate_errors(r["errors"], lang)}
        out.append(r)
    return out


def translate_report(body: dict[str, Any], lang: str) -> dict[str, Any]:
    """An upload report (`{"rows": [...], ...}`), its reasons in `lang`."""
    if lang == "en" or not isinstance(body.get("rows"), list):
        return body
    return {**body, "rows": translate_report_rows(body["rows"], lang)}
