#!/usr/bin/env python
"""Bring shared/locale/zh_CN/LC_MESSAGES/messages.po up to date with the code's messages:
new ones are added untranslated (tests/test_i18n.py then names them), translations kept.

    .venv/bin/python scripts/extract_messages.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from shared.i18n import LOCALE_DIR  # noqa: E402
from shared.i18n_extract import all_messages  # noqa: E402

PO = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"


def main() -> None:
    old: dict[str, str] = {}
    if PO.exists():
        with PO.open("rb") as f:
            old = {str(m.id): str(m.string) for m in read_po(f) if m.id}
    cat = Catalog(locale="zh_CN", project="tjpatent API messages", fuzzy=False)
    missing = 0
    for msg, files in sorted(all_messages().items()):
        text = old.get(msg, "")
        missing += not text
        cat.add(msg, text, locations=[(f, 0) for f in sorted(set(files))[:3]])
    PO.parent.mkdir(parents=True, exist_ok=True)
    with PO.open("wb") as f:
        write_po(f, cat, width=100, omit_header=False, no_location=False, include_lineno=False)
    print(f"{len(cat)} messages, {missing} without a translation -> {PO}")


if __name__ == "__main__":
    main()
