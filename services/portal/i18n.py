"""Gettext catalogues (Babel) for the portal's two languages.

The `.po` files under `locale/` are the source (English msgids, zh_CN translations); the
`.mo` files are compiled from them by `scripts/install` and again at start when missing or
older than their `.po`. The current request's language lives in a context variable so the
one Jinja2 environment serves both languages.
"""

from __future__ import annotations

import contextvars
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"zh_CN": "中文", "en": "English"}
DEFAULT = "zh_CN"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("portal_locale", default=DEFAULT)
_catalogues: dict[str, NullTranslations] = {}


def compile_catalogues() -> None:
    """Compile each `.po` whose `.mo` is missing or older (idempotent, cheap)."""
    for po in LOCALE_DIR.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as f:
            catalog = read_po(f)
        tmp = mo.with_suffix(".mo.tmp")
        with tmp.open("wb") as f:
            write_mo(f, catalog)
        tmp.replace(mo)


def load_catalogues() -> None:
    compile_catalogues()
    for lang in LANGUAGES:
        _catalogues[lang] = Translations.load(str(LOCALE_DIR), [lang], domain="messages")


def set_locale(lang: str) -> None:
    _current.set(lang if lang in LANGUAGES else DEFAULT)


def get_locale() -> str:
    return _current.get()


def _t() -> NullTranslations:
    return _catalogues.get(_current.get()) or NullTranslations()


def gettext(message: str) -> str:
    return _t().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _t().ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return str(_t().pgettext(context, message))
