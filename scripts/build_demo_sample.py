"""Rebuild services/catalog/demo/ from ../shared/data (a developer tool, not run by the product).

    .venv/bin/python scripts/build_demo_sample.py [--data ../shared/data]

Takes real patents (title, abstract, patentee) from cn-patents-bdci2022, university-owned
ones first, then research institutes, plus the 10 incoPat-style records (real numbers,
IPC, dates, legal status). bdci2022 has no application numbers, IPC, dates or legal
status: we GENERATE valid application numbers (correct CNIPA check digit, serials in a
9xxxxxx range unlikely to collide with real ones), filing and grant dates, and mark the
records granted. The README says so.

Then, for every SEI industry branch the pool would otherwise lack, up to two granted
titles from cn-patent-titles-ipc-lxingy3 (real title, IPC subclasses and publication
number) that the shipped tagger tags with that branch. Their owner is a fictional demo
institute; application number and dates are GENERATED as above.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from datetime import date, timedelta
from pathlib import Path

from services.catalog.demo.load import pooled_in_demo
from services.catalog.domain.industry import branches, explain, tag_industries
from shared.appno import make_application_number, parse_application_number

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "services" / "catalog" / "demo"

PROVINCE_PREFIXES = {
    "北京": "北京市", "天津": "天津市", "河北": "河北省", "山西": "山西省", "内蒙古": "内蒙古自治区",
    "辽宁": "辽宁省", "大连": "辽宁省", "沈阳": "辽宁省", "吉林": "吉林省", "长春": "吉林省",
    "黑龙江": "黑龙江省", "哈尔滨": "黑龙江省", "上海": "上海市", "江苏": "江苏省", "南京": "江苏省",
    "苏州": "江苏省", "常州": "江苏省", "无锡": "江苏省", "扬州": "江苏省", "浙江": "浙江省",
    "杭州": "浙江省", "宁波": "浙江省", "温州": "浙江省", "安徽": "安徽省", "合肥": "安徽省",
    "福建": "福建省", "福州": "福建省", "厦门": "福建省", "江西": "江西省", "南昌": "江西省",
    "山东": "山东省", "青岛": "山东省", "济南": "山东省", "河南": "河南省", "郑州": "河南省",
    "湖北": "湖北省", "武汉": "湖北省", "湖南": "湖南省", "长沙": "湖南省", "广东": "广东省",
    "广州": "广东省", "深圳": "广东省", "华南": "广东省", "广西": "广西壮族自治区", "海南": "海南省",
    "重庆": "重庆市", "四川": "四川省", "成都": "四川省", "西南": "四川省", "贵州": "贵州省",
    "云南": "云南省", "昆明": "云南省", "西藏": "西藏自治区", "陕西": "陕西省", "西安": "陕西省",
    "西北": "陕西省", "甘肃": "甘肃省", "兰州": "甘肃省", "青海": "青海省", "宁夏": "宁夏回族自治区",
    "新疆": "新疆维吾尔自治区", "首都": "北京市", "清华": "北京市", "中国农业大学": "北京市",
    "华北电力": "北京市", "中国科学院": "北京市", "中国农业科学院": "北京市", "东南大学": "江苏省",
    "东北大学": "辽宁省", "同济": "上海市", "中南大学": "湖南省", "华中": "湖北省",
    "电子科技大学": "四川省", "江南大学": "江苏省", "燕山大学": "河北省", "国防科技大学": "湖南省",
    "复旦": "上海市", "中山大学": "广东省", "暨南": "广东省", "厦门大学": "福建省", "南开": "天津市",
}  # fmt: skip
# Tianjin organisations and their districts (campus seat).
TIANJIN = {
    "天津大学": "nankai",
    "南开大学": "nankai",
    "天津科技大学": "binhai",
    "河北工业大学": "beichen",
    "天津工业大学": "xiqing",
    "天津理工大学": "xiqing",
}


def province_of(name: str) -> str | None:
    if name in TIANJIN:
        return "天津市"
    best = None
    for prefix, prov in PROVINCE_PREFIXES.items():
        if prefix in name[: len(prefix) + 4] and (best is None or len(prefix) > len(best[0])):
            best = (prefix, prov)
    return best[1] if best else None


def kind_of(name: str) -> str | None:
    if re.search(r"(大学|学院)$", name):
        return "university"
    if re.search(r"(研究院|研究所|科学院|研究中心)$", name):
        return "institute"
    return None


# The fictional owner of the lxingy3 titles (the source names no applicant).
LXINGY3_OWNER: dict[str, str | None] = {
    "name": "天津示例产业技术研究院（示例）",
    "kind": "institute",
    "district": "binhai",
    "province": None,
}
# lxingy3 titles whose tag we judged wrong by reading (bench/data/industry_precision.tsv)
# or that read like a poor demo of their branch.
NOT_FOR_DEMO = {
    "一种可自动输送的储货柜",
    "振动运输机疏通装置",
    "一种风电铸件浇铸平台",
    "一种矿山运输皮带机的托辊装置",
    "一种混凝土砌块清洁安全生产用除尘喷雾装置",
    "一种基于物联网的智能交互式警示护栏",
    "专用无线5G单兵图传终端",
    "一种具备防水性能的光伏瓦安装结构件",
    "新型粉末冶金齿轮压制模具",
}


def lxingy3_for_missing_branches(
    data: Path, patents: list[dict], rng: random.Random, per_branch: int = 2
) -> list[dict]:
    """Granted lxingy3 titles for each branch no pooled demo record is tagged with yet."""
    have = {
        b
        for p in patents
        if p.get("legal_status") == "granted" and _pooled(p["application_number"])
        for b in tag_industries(p.get("ipc_codes") or [], _text(p))
    }
    rows = [
        json.loads(line)
        for line in open(
            data / "cn-patent-titles-ipc-lxingy3" / "patents_clean.jsonl", encoding="utf-8"
        )
    ]
    # Granted only (B: granted invention, U: utility model), so they can be pooled.
    rows = [
        r for r in rows
        if r["publication_numbers"][0][-1] in "BU" and r["title"] not in NOT_FOR_DEMO
    ]  # fmt: skip
    out: list[dict] = []
    serial = 9_500_000
    for branch in branches():
        if branch.branch_no in have:
            continue
        # The longest matched term first: the most specific evidence makes the best demo.
        fits = sorted(
            (-max(len(h.term or "") for h in hits), r["publication_numbers"][0], i)
            for i, r in enumerate(rows)
            if (
                hits := [
                    h for h in explain(r["ipc"], r["title"]) if h.branch_no == branch.branch_no
                ]
            )
        )
        for r in [rows[i] for _, _, i in fits[:per_branch]]:
            have.update(tag_industries(r["ipc"], r["title"]))
            pub = r["publication_numbers"][0]
            utility = pub.endswith("U")
            year = rng.randint(2017, 2021)
            filed = date(year, rng.randint(1, 12), rng.randint(1, 28))
            number = ""
            while not number or not _pooled(number):  # a number the demo pools
                serial += rng.randint(1, 40)
                number = make_application_number(year, "2" if utility else "1", serial)
            out.append(
                {
                    "application_number": number,
                    "publication_number": pub,
                    "title": r["title"],
                    "abstract": "",
                    "ipc_codes": r["ipc"],
                    "patentees": [LXINGY3_OWNER["name"]],
                    "application_date": filed.isoformat(),
                    "grant_date": (filed + timedelta(days=rng.randint(180, 700))).isoformat(),
                    "legal_status": "granted",
                    "source": "cn-patent-titles-ipc-lxingy3:" + pub,
                    "generated": [
                        "application_number",
                        "application_date",
                        "grant_date",
                        "legal_status",
                        "patentees",
                    ],
                }
            )
    return out


def _pooled(number: str) -> bool:
    return pooled_in_demo(random.Random(parse_application_number(number).normal))


def _text(p: dict) -> str:
    return f"{p['title']} {p.get('abstract') or ''} {p.get('claims') or ''}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--universities", type=int, default=520)
    ap.add_argument("--institutes", type=int, default=80)
    args = ap.parse_args()
    data = Path(args.data)
    rng = random.Random(20261121)
    rows = [
        json.loads(line)
        for line in open(data / "cn-patents-bdci2022" / "patents_clean.jsonl", encoding="utf-8")
    ]
    picked: dict[str, list[dict]] = {"university": [], "institute": []}
    # Tianjin first, so the demo pool has local suppliers.
    rows.sort(key=lambda r: (r["applicants"][0] not in TIANJIN, r["source_id"]))
    for r in rows:
        name = r["applicants"][0].strip()
        kind = kind_of(name)
        if kind is None or province_of(name) is None or not r.get("abstract"):
            continue
        quota = args.universities if kind == "university" else args.institutes
        if len(picked[kind]) < quota:
            picked[kind].append(r)
    orgs: dict[str, dict] = {}
    patents = []
    serial = 9_000_000
    for kind, items in picked.items():
        for r in items:
            name = r["applicants"][0].strip()
            prov = province_of(name)
            orgs.setdefault(
                name,
                {
                    "name": name,
                    "kind": kind,
                    "district": TIANJIN.get(name),
                    "province": None if name in TIANJIN else prov,
                },
            )
            year = rng.randint(2012, 2021)
            filed = date(year, rng.randint(1, 12), rng.randint(1, 28))
            granted = filed + timedelta(days=rng.randint(420, 1100))
            serial += rng.randint(1, 40)
            patents.append(
                {
                    "application_number": make_application_number(year, "1", serial),
                    "title": r["title"].strip(),
                    "abstract": r["abstract"].strip(),
                    "patentees": [name],
                    "application_date": filed.isoformat(),
                    "grant_date": granted.isoformat(),
                    "legal_status": "granted",
                    "source": "cn-patents-bdci2022:" + r["source_id"],
                    "generated": [
                        "application_number",
                        "application_date",
                        "grant_date",
                        "legal_status",
                    ],
                }
            )
    for line in open(
        data / "cn-patents-incopat-style-sample" / "patents_clean.jsonl", encoding="utf-8"
    ):
        r = json.loads(line)
        name = r["applicants"][0]
        orgs.setdefault(
            name, {"name": name, "kind": "institute", "district": None, "province": "河南省"}
        )
        patents.append(
            {
                "application_number": r["application_number"],
                "publication_number": r.get("publication_number"),
                "title": r["title"],
                "abstract": r["abstract"],
                "ipc_codes": r["ipc"],
                "patentees": [name],
                "application_date": r["application_date"],
                "grant_date": r.get("grant_date"),
                "legal_status": r.get("legal_status"),
                "claims": r.get("first_claim"),
                "source": "cn-patents-incopat-style-sample",
                "generated": [],
            }
        )
    extra = lxingy3_for_missing_branches(data, patents, random.Random(20261127))
    if extra:
        orgs.setdefault(str(LXINGY3_OWNER["name"]), LXINGY3_OWNER)
    patents.extend(extra)
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "demo_patents.jsonl", "w", encoding="utf-8") as f:
        for p in patents:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    with open(OUT / "demo_organisations.json", "w", encoding="utf-8") as f:
        json.dump(
            sorted(orgs.values(), key=lambda o: (o["district"] is None, o["name"])),
            f,
            ensure_ascii=False,
            indent=1,
        )
    print(f"{len(patents)} patents, {len(orgs)} organisations -> {OUT}")


if __name__ == "__main__":
    main()
