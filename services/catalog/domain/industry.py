"""Strategic-emerging-industry tags from IPC codes (CNIPA 2021 concordance).

A rule fires for a patent when one of its IPC codes falls under a rule pattern and not
under one of that rule's exclusions, and — for rules whose 关键词/说明 cell is filled —
the title/abstract mentions one of the cell's *terms*. The cells are product
descriptions ("太阳能吸热涂层的镀膜设备、大型镀膜机等泵及真空设备制造"); no patent repeats
such a phrase, so each cell is segmented with jieba and generic words (制造, 设备, 产品,
服务 …) are dropped; what remains (太阳能, 吸热, 涂层, 镀膜, 真空 …) is the gate.

Code forms: a full group (H01L31/18) meets exact patterns and the wildcards above it; a
main group (H01L31, = H01L31/00) the same; a subclass-only code (H01L, what the lxingy3
titles carry) cannot tell which group it is in, so it is tagged only
  - by rules covering the whole subclass (A61B*, G16H) or class (G16*), gate applied, or
  - by keyword-gated rules with a pattern inside that subclass when the text names one
    of the rule's terms — the text stands in for the missing group.
IPC-only rules about part of a subclass never fire on a subclass-only code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import jieba

from shared.ipc import Ipc, parse_ipc

jieba.setLogLevel(60)

# Words that occur across unrelated branches: gating on them would gate nothing.
_GENERIC = frozenset(
    """制造 服务 设备 产品 材料 系统 技术 专用 专用设备 加工 生产 新型 装备 装置 工业 工程 研究
    处理 仪器 高效 利用 相关 平台 特种 管理 自动 机械 检测 设计 控制 开发 制品 元件 试验 发展
    资源 关键词 地面 增强 液体 企业 信息 安全 辅助 混合 集成 领域 功能 快速 保护 基础 消费
    特殊 先进 大型 应用 特征 高速 城市 设施 工况 活动 评估 认证 及其 其他 其它 智能 高性能
    高品质 高端 高温 高压 高强度 超高 超级 连续 有机 零部件 部件 配件 制作 方式 结构 精密
    研发 推广 咨询 运行 支撑 方案 规划 监理 施工 勘察 维修 维护 建设 一代 新一代 下一代
    用于 包括 以外 类似 主要 实验 综合 模块 单体 器具 元器件 零件 组件 成套 关键 通用 未列明
    产业 行业 项目 体系 标准 质量 性能 环境 能源 电子 数字 数字化 网络 数据 工艺 方法 测量
    仪器仪表 器件 机组 设备制造 中心 基地 用品 用具 物品 参数 基于 提供 具有 使用 各种 各类 以上
    开展 实施 支持 可靠 准确 复杂 制备 改性 修复 优化 存储 识别 计算 计算机 终端 连接 操作
    安装 在线 交互 复合 合成 强度 变形 应力 检验 监控 故障 信号 传输 分析 一体化 提供 内容
    客户 个人 家庭 公开 列明 新兴 效益 保障 响应 数十 上级 上线 协作 协同 作业 专业
    信息处理 数据处理 新材料 动力 新能源 工程施工 工程设计 建筑工程 技术推广 工程建设 原料 工程技术""".split()
)
# Single characters are too ambiguous as terms, except these metals and machines.
_SINGLE = frozenset("泵钢钛钨钼钽铌铪锆锡铝铜镍钴锌铅镁铍铟钒锂钕锑硒碲镓")
# The table's own placeholder cells ("…相关关键词"), spelled out.
_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "汽车相关关键词": (
        "汽车", "车辆", "车载", "车用", "电动车", "整车", "新能源车", "动力电池", "充电桩",
    ),
    "稀土相关关键词": (
        "稀土", "镧", "铈", "镨", "钕", "钐", "铕", "钆", "铽", "镝", "钬", "铒", "铥", "镱",
        "镥", "钪", "钇",
    ),
    "纤维相关关键词": ("纤维",),
    "控制系统相关关键词": ("控制系统",),
    "产品相关关键词": (),  # no content: the rule is IPC-only
    "量子计算、量子芯片、量子测控等量子计算机相关关键词": ("量子",),
    "平行链、中继链、以太币等区块链相关关键词": (
        "区块链", "平行链", "中继链", "以太币", "智能合约", "共识",
    ),
    "人脑、杏仁核、癫痫等脑部结构和脑部疾病关键词": (
        "人脑", "脑部", "大脑", "杏仁核", "癫痫", "脑电", "脑机", "脑卒中", "脑疾病",
    ),
}  # fmt: skip
# Cells that describe new-energy vehicles without naming them the way patents do.
_NEV = (
    "新能源汽车",
    "新能源车",
    "电动汽车",
    "纯电动",
    "混合动力",
    "插电式",
    "燃料电池汽车",
    "增程式",
)
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "以插电式混合驱动、纯电驱动和燃料电池驱动等新型能源驱动的汽车": _NEV,
    "插电式混合驱动、纯电驱动和燃料电池驱动等新型能源驱动方式": _NEV,
    "新能源车整车制造": _NEV,
}
# "不包含X" cells veto the rule when the text names X; these are X's distinctive words.
_VETOES: dict[str, tuple[str, ...]] = {
    "非机动车": ("非机动车", "自行车", "电动自行车"),
    "主要依靠发动机驱动的轻混动力汽车": ("轻混", "轻度混合"),
    "航天相关设备制造": ("航天", "卫星", "运载火箭"),
    "连续纤维改性的ABS": ("连续纤维",),
}
_EXCEPT = re.compile(r"除[^；]*?以外的?")
# Joiners inside a cell ("A等B及C"); 等 before 离子 is part of 等离子 (plasma).
_JOINERS = re.compile(r"等(?!离)|及|、|；|，")
_SUFFIXES = ("设备", "制造", "材料", "系统", "装置", "产品", "服务", "装备", "技术")
_NEGATION = ("不包含", "不包括", "不含")
_SPECIFIC = 1
_TERM = re.compile(r"^(?:[\u4e00-\u9fff]{2,}|[a-z][a-z0-9+-]+)$")


@dataclass(frozen=True)
class Pattern:
    subclass: str  # "H01L", or a class "G16" for G16*
    group: str | None
    subgroup: str | None  # None: the whole main group

    @property
    def whole_subclass(self) -> bool:
        return self.group is None

    def covers(self, ipc: Ipc) -> bool:
        if not ipc.subclass.startswith(self.subclass):
            return False
        if len(self.subclass) == 3 or self.group is None:
            return True
        if ipc.group != self.group:
            return False
        return self.subgroup is None or ipc.subgroup == self.subgroup


_PATTERN = re.compile(r"^([A-H]\d{2}[A-Z]?)(\d{1,4})?(?:/(\d{2,6}))?(\*?)$")


def parse_pattern(raw: str) -> Pattern:
    """`H01L31*` = the main group and all below; `H01L31/18` exactly that group;
    `H01L*`, `H01L` = the subclass; `G16*` = the class. A bare main group (`H03M13`,
    written once in the table without `*` or `/00`) is read as the whole main group."""
    m = _PATTERN.match(raw.replace(" ", ""))
    if not m:
        raise ValueError(f"bad concordance pattern {raw!r}")
    head, group, subgroup, star = m.groups()
    if len(head) == 3 and not star:
        raise ValueError(f"bad concordance pattern {raw!r}: a class needs '*'")
    if group is None:
        return Pattern(head, None, None)
    exact = subgroup is not None and not star
    return Pattern(head, str(int(group)), parse_ipc(raw).subgroup if exact else None)


@dataclass(frozen=True)
class Rule:
    branch_no: str
    patterns: tuple[Pattern, ...]
    exclusions: tuple[Pattern, ...]
    terms: tuple[str, ...]  # empty = IPC-only rule
    vetoes: tuple[str, ...] = ()
    # The terms used by no more than _SPECIFIC industries: only these may place a
    # subclass-only code inside part of its subclass ("电池" is in 4 industries).
    specific: tuple[str, ...] = ()


@dataclass(frozen=True)
class Branch:
    branch_no: str
    branch_name: str
    industry_no: str
    industry_name: str
    rules: tuple[Rule, ...]


def cell_terms(cell: str) -> tuple[str, ...]:
    """The distinctive words of one keyword description, e.g. '光伏设备及元器件制造' → 光伏."""
    if cell in _PLACEHOLDERS:
        return _PLACEHOLDERS[cell]
    if cell.endswith("关键词"):
        raise ValueError(f"placeholder keyword cell {cell!r} has no spelled-out terms")
    text = _JOINERS.sub(" ", _EXCEPT.sub(" ", cell))
    out = list(_SYNONYMS.get(cell, ()))
    for word in jieba.lcut(text):
        word = word.strip().lower()
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 2:
                word = word[: -len(suffix)]
                break
        if word in _GENERIC:
            continue
        if _TERM.match(word) or word in _SINGLE:
            out.append(word)
    return tuple(dict.fromkeys(out))


def _gate(keywords: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    terms: list[str] = []
    vetoes: list[str] = []
    for cell in keywords:
        cell = cell.strip()
        if cell.startswith(_NEGATION):
            what = cell[3:] if cell.startswith(_NEGATION[:2]) else cell[2:]
            vetoes.extend(_VETOES.get(what, (what,)))
        elif cell:
            terms.extend(cell_terms(cell))
    return tuple(dict.fromkeys(terms)), tuple(dict.fromkeys(vetoes))


def _supplement() -> list[dict[str, object]]:
    text = resources.files("services.catalog.data").joinpath("sei_supplement.json")
    return list(json.loads(text.read_text(encoding="utf-8"))["rules"])


@lru_cache(maxsize=1)
def branches() -> tuple[Branch, ...]:
    text = resources.files("services.catalog.data").joinpath("sei_ipc_concordance_2021.json")
    data = json.loads(text.read_text(encoding="utf-8"))
    extra: dict[str, list[dict[str, object]]] = {}
    for r in _supplement():
        extra.setdefault(str(r["branch_no"]), []).append(r)
    gates = {
        (b["branch_no"], i): _gate(r["keywords"])
        for b in data["branches"]
        for i, r in enumerate(b["rules"] + extra.get(b["branch_no"], []))
    }
    spread: dict[str, set[str]] = {}
    for (branch_no, _), (terms, _) in gates.items():
        for t in terms:
            spread.setdefault(t, set()).add(branch_no.split(".")[0])
    result = []
    for b in data["branches"]:
        rules = []
        for i, r in enumerate(b["rules"] + extra.get(b["branch_no"], [])):
            if not r["ipc_patterns"]:
                continue  # the transcription's blank rule lines
            terms, vetoes = gates[(b["branch_no"], i)]
            rules.append(
                Rule(
                    b["branch_no"],
                    tuple(parse_pattern(p) for p in r["ipc_patterns"]),
                    tuple(parse_pattern(p) for p in r["ipc_exclusions"]),
                    terms,
                    vetoes,
                    tuple(t for t in terms if len(spread[t]) <= _SPECIFIC),
                )
            )
        result.append(
            Branch(
                b["branch_no"], b["branch_name"], b["industry_no"], b["industry_name"], tuple(rules)
            )
        )
    return tuple(result)


@lru_cache(maxsize=1)
def _rules_by_subclass() -> dict[str, tuple[Rule, ...]]:
    index: dict[str, list[Rule]] = {}
    for branch in branches():
        for rule in branch.rules:
            for key in dict.fromkeys(p.subclass for p in rule.patterns):
                index.setdefault(key, []).append(rule)
    return {k: tuple(v) for k, v in index.items()}


def industry_catalogue() -> list[dict[str, str]]:
    return [
        {
            "branch_no": b.branch_no,
            "branch_name": b.branch_name,
            "industry_no": b.industry_no,
            "industry_name": b.industry_name,
        }
        for b in branches()
    ]


def known_branch(code: str) -> bool:
    return any(b.branch_no == code or b.industry_no == code for b in branches())


Basis = Literal["ipc", "ipc+terms", "subclass", "subclass+terms", "subclass+specific"]


@dataclass(frozen=True)
class Candidate:
    rule: Rule
    basis: Basis


@lru_cache(maxsize=65536)
def _candidates(code: str) -> tuple[Candidate, ...]:
    """Rules whose IPC side this code meets (cached: uploads repeat codes)."""
    ipc = parse_ipc(code)
    index = _rules_by_subclass()
    rules = index.get(ipc.subclass, ()) + index.get(ipc.subclass[:3], ())
    out: list[Candidate] = []
    for rule in dict.fromkeys(rules):
        if ipc.group is not None:
            if any(p.covers(ipc) for p in rule.patterns) and not any(
                x.covers(ipc) for x in rule.exclusions
            ):
                out.append(Candidate(rule, "ipc+terms" if rule.terms else "ipc"))
            continue
        whole = any(p.whole_subclass and p.covers(ipc) for p in rule.patterns)
        if whole and not any(x.whole_subclass and x.covers(ipc) for x in rule.exclusions):
            if not rule.terms or rule.specific:
                out.append(Candidate(rule, "subclass+terms" if rule.terms else "subclass"))
        elif rule.specific:  # part of this subclass: only the text can place it there
            out.append(Candidate(rule, "subclass+specific"))
    return tuple(out)


@lru_cache(maxsize=4096)
def _latin(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])")


def _mentions(lowered: str, term: str) -> bool:
    """Chinese terms as substrings; Latin ones as whole words ('ic' is not in 'sic')."""
    if term.isascii():
        return _latin(term).search(lowered) is not None
    return term in lowered


@dataclass(frozen=True)
class Hit:
    branch_no: str
    code: str
    basis: Basis
    term: str | None  # the keyword term the text names, for gated rules


def explain(ipc_codes: list[str], text: str) -> list[Hit]:
    """Every rule that fires, with the code and the term that made it fire."""
    lowered = text.lower()
    hits: list[Hit] = []
    for code in ipc_codes:
        for cand in _candidates(code):
            rule = cand.rule
            if any(_mentions(lowered, v) for v in rule.vetoes):
                continue
            # Without a group, only terms specific to one industry may vouch for the rule.
            gate = rule.specific if cand.basis.startswith("subclass+") else rule.terms
            term = next((t for t in gate if _mentions(lowered, t)), None)
            if gate and term is None:
                continue
            hits.append(Hit(rule.branch_no, code, cand.basis, term))
    return hits


def _branch_key(branch_no: str) -> tuple[int, ...]:
    return tuple(int(x) for x in branch_no.split("."))


@lru_cache(maxsize=65536)
def _gates(code: str) -> tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]:
    """(branch, vetoes, gate terms) of each candidate rule of a code: `explain`'s test,
    worked out once per code."""
    return tuple(
        (c.rule.branch_no, c.rule.vetoes,
         c.rule.specific if c.basis.startswith("subclass+") else c.rule.terms)
        for c in _candidates(code)
    )  # fmt: skip


def tag_industries(ipc_codes: list[str], text: str) -> list[str]:
    """Branch numbers (e.g. '1.2') whose rules this patent satisfies, sorted: the
    branches of `explain`'s hits, without building them (it runs for every upload)."""
    lowered = text.lower()
    found: set[str] = set()
    for code in ipc_codes:
        for branch_no, vetoes, gate in _gates(code):
            if branch_no in found:
                continue  # another rule of the branch fired already
            if any(_mentions(lowered, v) for v in vetoes):
                continue
            if gate and not any(_mentions(lowered, t) for t in gate):
                continue
            found.add(branch_no)
    return sorted(found, key=_branch_key)


def industry_columns(
    ipc_codes: list[str], title: str, abstract: str, claims: str | None
) -> dict[str, Any]:
    """The stored tag columns of a patent: `industries` and the search column
    `industry_text` (" 1.2 6.3 ", so a filter can match a whole branch or industry)."""
    industries = tag_industries(ipc_codes, f"{title} {abstract} {claims or ''}")
    text = (" " + " ".join(industries) + " ") if industries else ""
    return {"industries": industries, "industry_text": text}
