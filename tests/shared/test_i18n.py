"""The one message catalogue: every message the code writes has a Chinese translation,
and the translation machinery (templates, nested reasons, fallback, negotiation) holds."""

from __future__ import annotations

import re

from babel.messages.pofile import read_po

from shared.i18n import (
    LOCALE_DIR,
    PYDANTIC_TEMPLATES,
    choose_language,
    translate,
    translate_pydantic,
)
from shared.i18n_extract import all_messages, source_messages

PO = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"
HOLDER = re.compile(r"\{[^{}]*\}")


def _catalogue() -> dict[str, str]:
    with PO.open("rb") as f:
        return {str(m.id): str(m.string) for m in read_po(f) if m.id}


def test_every_message_in_the_code_has_a_chinese_translation() -> None:
    zh = _catalogue()
    found = all_messages()
    assert len(source_messages()) > 200  # the scan really reads the services
    untranslated = sorted(m for m in found if not zh.get(m))
    assert not untranslated, (
        "run scripts/extract_messages.py and translate these in " + str(PO) + ":\n"
        + "\n".join(f"{m!r} ({', '.join(found[m][:2])})" for m in untranslated)
    )  # fmt: skip


def test_translations_use_only_the_placeholders_of_their_message() -> None:
    kept = 0
    for msgid, msgstr in _catalogue().items():
        if msgstr:
            assert set(HOLDER.findall(msgstr)) <= set(HOLDER.findall(msgid)), msgid
            kept += sorted(HOLDER.findall(msgid)) == sorted(HOLDER.findall(msgstr))
    assert kept > 200  # nearly all keep every value


def test_messages_are_translated_with_their_values() -> None:
    assert translate("patent 202110123456.7 is unknown") == "专利 202110123456.7 不存在"
    assert translate("patent 202110123456.7 is unknown", "en") == (
        "patent 202110123456.7 is unknown"
    )
    # several field reasons in one detail: each translated, field names kept
    assert (
        translate(
            "application_numbers[0]: patent 1 is unknown; recipient_org_id: organisation 5 is unknown"
        )
        == "application_numbers[0]: 专利 1 不存在; recipient_org_id: 机构 5 不存在"
    )
    # reasons nested in a value are translated too
    assert (
        translate(
            "patent 1 cannot be pooled: its term ended on 2020-01-01; already converted (deal 3)"
        )
        == "专利 1 不能入池：保护期已于 2020-01-01 届满; 已转化（交易 3）"
    )
    # unknown messages stay in English
    assert translate("a message nobody wrote down") == "a message nobody wrote down"


def test_pydantic_errors_by_type_and_context() -> None:
    err = {"type": "string_too_long", "ctx": {"max_length": 500}}
    assert translate_pydantic(err, "String should have at most 500 characters", "zh_CN") == (
        "最多 500 个字符"
    )
    assert translate_pydantic({"type": "missing"}, "Field required", "zh_CN") == "必填字段"
    assert translate_pydantic({"type": "missing"}, "Field required", "en") == "Field required"
    assert set(PYDANTIC_TEMPLATES) >= {"missing", "string_too_long", "greater_than"}


def test_language_negotiation() -> None:
    assert choose_language(None) == "zh_CN"
    assert choose_language("") == "zh_CN"
    assert choose_language("en") == "en"
    assert choose_language("en-US,en;q=0.9,zh;q=0.8") == "en"
    assert choose_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh_CN"
    assert choose_language("fr-FR, en;q=0.5") == "en"
    assert choose_language("de") == "zh_CN"
