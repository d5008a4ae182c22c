"""Text analysis for matching: normalise, segment, drop stop words, weight fields.

Segmentation uses rjieba (the Rust jieba-rs binding, ~14x faster than jieba with the
same dictionary) and falls back to jieba when rjieba is not installed. A document is a
bag of weighted terms:

- words from the segmenter, minus a patent-domain stop-word list;
- character bigrams of CJK words of three or more characters (恒流源 -> 恒流, 流源), so a
  query word matches compounds the segmenter kept whole (weight `bigram_weight`);
- IPC features `ipc:H01M` (subclass) and `ipc:H01M10` (main group).

Fields are weighted title > abstract > claims by adding their term frequencies with
weights. Need statements first lose their genre boilerplate (现寻求一种技术, 预期效果 ...)
and words that describe the need-writing situation rather than the technology.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from shared.textfold import nfkc

try:  # pragma: no cover - exercised by whichever is installed
    import rjieba as _rjieba

    def _cut(text: str) -> list[str]:
        return list(_rjieba.cut(text))

    SEGMENTER = "rjieba"
except ImportError:  # pragma: no cover
    import jieba as _jieba

    _jieba.setLogLevel(60)

    def _cut(text: str) -> list[str]:
        return _jieba.lcut(text)

    SEGMENTER = "jieba"


_CJK = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff]+$")
_ALNUM = re.compile(r"^[a-z][a-z0-9\-\+\.]*$|^[0-9]+[a-z][a-z0-9\-]*$")
_SPACE = re.compile(r"\s+")
IPC_PREFIX = "ipc:"


def _read_list(name: str) -> list[str]:
    text = resources.files("services.matching.data").joinpath(name).read_text(encoding="utf-8")
    words: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        words.extend(line.split())
    return words


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    return frozenset(_read_list("stopwords_patent.txt"))


@lru_cache(maxsize=1)
def _need_lists() -> tuple[re.Pattern[str], frozenset[str]]:
    text = resources.files("services.matching.data").joinpath("need_boilerplate.txt")
    phrases: list[str] = []
    words: list[str] = []
    target = phrases
    for line in text.read_text(encoding="utf-8").splitlines():
        if line.startswith("# Words"):
            target = words
        line = line.split("#", 1)[0].strip()
        target.extend(line.split())
    phrases.sort(key=len, reverse=True)
    return re.compile("|".join(re.escape(p) for p in phrases)), frozenset(words)


def need_words() -> frozenset[str]:
    return _need_lists()[1]


def normalise(text: str) -> str:
    """NFKC (full-width -> half-width), lower case, collapse whitespace."""
    return _SPACE.sub(" ", nfkc(text).lower()).strip()


def strip_boilerplate(text: str) -> str:
    """Remove need-statement genre phrases (现寻求一种技术, 预期效果 ...)."""
    return _need_lists()[0].sub(" ", text)


def segment(text: str) -> list[str]:
    """Raw segmenter output of normalised text (no filtering)."""
    return _cut(normalise(text))


@dataclass(frozen=True)
class AnalyzerConfig:
    title_weight: float = 3.0
    abstract_weight: float = 1.0
    claims_weight: float = 0.5
    # Character bigrams (prefixed `~`): "runs" = over runs of adjacent kept CJK words, so
    # 烟感器 meets 烟感探测器 and 回转窑 meets 窑炉 however the segmenter split them, while
    # stop words and need boilerplate still break a run; "words" = only inside CJK words of
    # three or more characters (the first matcher); "none" = off.
    bigrams: str = "runs"
    bigram_weight: float = 0.6
    # Lone CJK characters as terms of their own (耐, 管 ...): noise that let one character
    # decide a ranking; with run bigrams their meaning survives inside the bigrams.
    single_chars: bool = False
    ipc_weight: float = 1.0
    # A need sent as one text: weight its short first line or sentence as the title.
    headline: bool = True
    max_chars: int = 20_000  # per field; longer text is cut (queries and documents)


def _keep(tok: str, stops: frozenset[str]) -> bool:
    if tok in stops:
        return False
    if _CJK.match(tok):
        return True
    return bool(_ALNUM.match(tok)) and len(tok) >= 2


def _run_bigrams(tokens: list[str], stops: frozenset[str]) -> list[str]:
    """Bigrams over runs of adjacent kept CJK tokens (a stop word or non-CJK token ends a run)."""
    grams: list[str] = []
    run = ""
    for tok in [*tokens, " "]:
        if tok not in stops and _CJK.match(tok):
            run += tok
            continue
        if len(run) >= 2:
            grams.extend("~" + run[i : i + 2] for i in range(len(run) - 1))
        run = ""
    return grams


def terms(text: str, cfg: AnalyzerConfig, extra_stops: frozenset[str] = frozenset()) -> list[str]:
    """Filtered words of one field, then character bigrams (prefixed `~`)."""
    if not text:
        return []
    stops = stop_words() | extra_stops if extra_stops else stop_words()
    tokens = segment(text[: cfg.max_chars])
    kept = [t for t in tokens if _keep(t, stops)]
    words = [t for t in kept if cfg.single_chars or len(t) > 1 or not _CJK.match(t)]
    if cfg.bigrams == "runs":
        words.extend(_run_bigrams(tokens, stops))
    elif cfg.bigrams == "words":
        for w in kept:
            if len(w) >= 3 and _CJK.match(w):
                words.extend("~" + w[i : i + 2] for i in range(len(w) - 1))
    return words


def ipc_terms(codes: Iterable[str]) -> list[str]:
    """`H01M10/0525` -> ipc:h01m, ipc:h01m10 (subclass and main group)."""
    out: list[str] = []
    for code in codes:
        c = code.replace(" ", "").upper()
        if len(c) < 4:
            continue
        out.append(IPC_PREFIX + c[:4].lower())
        if "/" in c:
            out.append(IPC_PREFIX + c.split("/", 1)[0].lower())
    return list(dict.fromkeys(out))


def _add(bag: dict[str, float], words: Iterable[str], weight: float, cfg: AnalyzerConfig) -> None:
    for w in words:
        bag[w] = bag.get(w, 0.0) + (cfg.bigram_weight * weight if w[0] == "~" else weight)


def analyse_patent(
    title: str,
    abstract: str | None,
    claims: str | None = None,
    ipc_codes: Iterable[str] = (),
    cfg: AnalyzerConfig | None = None,
) -> dict[str, float]:
    """Field-weighted term frequencies of one patent."""
    cfg = cfg or AnalyzerConfig()
    bag: dict[str, float] = {}
    _add(bag, terms(title, cfg), cfg.title_weight, cfg)
    _add(bag, terms(abstract or "", cfg), cfg.abstract_weight, cfg)
    if claims and cfg.claims_weight:
        _add(bag, terms(claims, cfg), cfg.claims_weight, cfg)
    for t in ipc_terms(ipc_codes):
        bag[t] = bag.get(t, 0.0) + cfg.ipc_weight
    return bag


def analyse_query(
    text: str,
    title: str = "",
    ipc_codes: Iterable[str] = (),
    cfg: AnalyzerConfig | None = None,
    need_statement: bool = True,
) -> dict[str, float]:
    """Weighted terms of a free-text query or a need (title weighted like a patent title)."""
    cfg = cfg or AnalyzerConfig()
    extra = need_words() if need_statement else frozenset()
    bag: dict[str, float] = {}
    clean = (lambda s: strip_boilerplate(normalise(s))) if need_statement else normalise
    if not title and need_statement and cfg.headline:
        title, text = headline(text)
    _add(bag, terms(clean(title), cfg, extra), cfg.title_weight, cfg)
    _add(bag, terms(clean(text), cfg, extra), cfg.abstract_weight, cfg)
    for t in ipc_terms(ipc_codes):
        bag[t] = bag.get(t, 0.0) + cfg.ipc_weight
    return bag


_HEAD = re.compile(r"[\n。！？!?]")


def headline(text: str, max_chars: int = 32, min_rest: int = 15) -> tuple[str, str]:
    """Split a need pasted as one text into its headline and the rest: a short first line
    or sentence ("LED手电筒红外开关改进\n现有产品中…") is the need's title and is weighted
    like one. Text without such a head is returned whole."""
    m = _HEAD.search(text)
    if m is None:
        return "", text
    head, rest = text[: m.start()].strip(), text[m.end() :].strip()
    if not head or len(head) > max_chars or len(rest) < min_rest:
        return "", text
    return head, rest


def sublinear(tf: float) -> float:
    return 1.0 + math.log(tf) if tf > 0 else 0.0
