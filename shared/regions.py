"""Tianjin's 16 districts and the organisation kinds used across services."""

from __future__ import annotations

from enum import StrEnum

TIANJIN_DISTRICTS: dict[str, str] = {
    "heping": "和平区",
    "hedong": "河东区",
    "hexi": "河西区",
    "nankai": "南开区",
    "hebei": "河北区",
    "hongqiao": "红桥区",
    "dongli": "东丽区",
    "xiqing": "西青区",
    "jinnan": "津南区",
    "beichen": "北辰区",
    "wuqing": "武清区",
    "baodi": "宝坻区",
    "ninghe": "宁河区",
    "jinghai": "静海区",
    "jizhou": "蓟州区",
    "binhai": "滨海新区",
}
DISTRICT_BY_CHINESE = {v: k for k, v in TIANJIN_DISTRICTS.items()}

# Province-level divisions for organisations outside Tianjin (GB/T 2260 names).
PROVINCES = [
    "北京市", "河北省", "山西省", "内蒙古自治区", "辽宁省", "吉林省", "黑龙江省", "上海市",
    "江苏省", "浙江省", "安徽省", "福建省", "江西省", "山东省", "河南省", "湖北省", "湖南省",
    "广东省", "广西壮族自治区", "海南省", "重庆市", "四川省", "贵州省", "云南省", "西藏自治区",
    "陕西省", "甘肃省", "青海省", "宁夏回族自治区", "新疆维吾尔自治区", "台湾省",
    "香港特别行政区", "澳门特别行政区", "境外",
]  # fmt: skip


class OrgKind(StrEnum):
    UNIVERSITY = "university"
    INSTITUTE = "institute"
    SOE = "soe"
    SME = "sme"
    ENTERPRISE = "enterprise"  # other (non-SME, non-state) enterprise
    OTHER = "other"


SUPPLIER_KINDS = frozenset({OrgKind.UNIVERSITY, OrgKind.INSTITUTE, OrgKind.SOE})
