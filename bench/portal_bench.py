"""Server time of the portal's main pages, measured against a running platform.

    scripts/run &                                   # or any running portal + services
    .venv/bin/python bench/portal_bench.py          # 300 requests per page
    .venv/bin/python bench/portal_bench.py --smoke  # 20 per page, a quick check
    .venv/bin/python bench/portal_bench.py --setup 100000   # its own platform on PostgreSQL

Signs in through the sign-in form as the demo SME and the demo city bureau (from
var/demo-people.json, or --sme / --bureau / --password), then requests, one at a time over
one keep-alive connection each:

- the search page (`GET /search?q=…`, a rotating list of keywords, some with filters),
- the problem-to-patents page (`POST /problem`, rotating problem statements),
- the bureau dashboard (`GET /bureau?year=…`).

Reports p50 / p99 / max of the portal's own `Server-Timing: app;dur=` (the time from the
request reaching the portal to the response head, including its calls to the services)
and of the client-side wall time, and the search page's weight (HTML + CSS + scripts).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
KEYWORDS = [
    "电池", "传感器", "电路", "材料", "检测 方法", "催化剂", "机器人", "图像", "污水",
    "电池 正极", "LED", "算法", "涂层", "医疗", "不存在的词语",
]  # fmt: skip
FILTERS = [{}, {"zero_price": "true"}, {"mode": "assignment"}, {"owner_kind": "university"}]
PROBLEMS = [
    "我们的LED灯具驱动发热严重，需要一种恒流升压的驱动电路方案",
    "锂电池正极材料循环寿命短，希望提高循环稳定性",
    "印染废水COD高，需要低成本的处理工艺",
    "需要一种柔性压力传感器用于可穿戴设备",
    "生产线上的零件缺陷检测依靠人工，想用机器视觉自动识别",
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def sign_in(base: str, login: str, password: str) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=base, timeout=60)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/signin").text)
    assert token, "no sign-in form"
    r = c.post("/signin", data={"csrf_token": token.group(1), "login": login, "password": password})
    if r.status_code != 303:
        sys.exit(f"sign-in as {login} failed ({r.status_code})")
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', c.get("/").text)
    assert csrf
    return c, csrf.group(1)


def server_ms(r: httpx.Response) -> float:
    m = re.search(r"app;dur=([0-9.]+)", r.headers.get("server-timing", ""))
    return float(m.group(1)) if m else float("nan")


def measure(name: str, n: int, call, label=None) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """`label(i)`: what request i asked (printed for the slowest ones, to find a slow case)."""
    server, wall = [], []
    by_label: dict[str, list[float]] = {}
    for i in range(n):
        t = time.perf_counter()
        r = call(i)
        wall.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (name, r.status_code, r.text[:300])
        server.append(server_ms(r))
        if label is not None:
            by_label.setdefault(label(i), []).append(server[-1])
    out = {
        "n": n,
        "server_p50": percentile(server, 50),
        "server_p99": percentile(server, 99),
        "server_max": max(server),
        "wall_p50": percentile(wall, 50),
        "wall_p99": percentile(wall, 99),
        "mean": statistics.fmean(server),
    }
    print(
        f"{name:<22} n={n:<4} server p50 {out['server_p50']:6.1f} ms  p99 {out['server_p99']:6.1f} ms"
        f"  max {out['server_max']:6.1f} ms   (client wall p50 {out['wall_p50']:.1f}, p99 {out['wall_p99']:.1f})"
    )
    slowest = sorted(by_label.items(), key=lambda kv: -max(kv[1]))[:3]
    for what, times in slowest:
        print(
            f"    slowest: {what}  server max {max(times):.1f} ms, median {statistics.median(times):.1f} ms"
        )
    return out


def page_weight(c: httpx.Client, path: str) -> int:
    html = c.get(path).content
    total = len(html)
    for ref in re.findall(rb'(?:src|href)="(/static/[^"]+)"', html):
        total += len(c.get(ref.decode()).content)
    return total


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--portal", default="http://127.0.0.1:8100")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--smoke", action="store_true", help="20 requests per page")
    ap.add_argument("--people", default=str(ROOT / "var" / "demo-people.json"))
    ap.add_argument("--sme", help="SME sign-in (e-mail or phone)")
    ap.add_argument("--bureau", help="city bureau sign-in (e-mail or phone)")
    ap.add_argument("--password")
    ap.add_argument("--year", default="2023")
    ap.add_argument("--setup", type=int, metavar="N",
                    help="start a fresh platform on PostgreSQL with N pooled patents first")  # fmt: skip
    ap.add_argument(
        "--pg",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = ap.parse_args()
    if args.setup:
        from bench.portal_setup import platform

        with platform(args.setup, args.pg, ROOT / "bench" / "results" / "portal") as env:
            people = env["people"]
            args.portal = env["portal"]
            args.sme, args.bureau = people["sme"]["login"], people["city_bureau"]["login"]
            args.password = people["sme"]["password"]
            return run(args)
    return run(args)


def run(args: argparse.Namespace) -> int:
    n = 20 if args.smoke else args.n
    sme, bureau, pw_sme, pw_bureau = args.sme, args.bureau, args.password, args.password
    if not (sme and bureau) and Path(args.people).exists():
        people = json.loads(Path(args.people).read_text(encoding="utf-8"))
        by_role = {p["role"]: p for p in (people if isinstance(people, list) else people.values())}
        sme = sme or by_role["sme"]["login"]
        bureau = bureau or by_role["city_bureau"]["login"]
        pw_sme = args.password or by_role["sme"]["password"]
        pw_bureau = args.password or by_role["city_bureau"]["password"]
    if not (sme and bureau and pw_sme and pw_bureau):
        sys.exit("give --sme, --bureau and --password, or run scripts/run (var/demo-people.json)")
    c_sme, csrf = sign_in(args.portal, sme, pw_sme)
    c_bureau, _ = sign_in(args.portal, bureau, pw_bureau)
    # Warm up connections and caches once per page.
    c_sme.get("/search", params={"q": "电池"})
    c_bureau.get("/bureau", params={"year": args.year})
    results = {
        "search": measure(
            "search page",
            n,
            lambda i: c_sme.get(
                "/search", params={"q": KEYWORDS[i % len(KEYWORDS)], **FILTERS[i % len(FILTERS)]}
            ),
            label=lambda i: f"q={KEYWORDS[i % len(KEYWORDS)]} {FILTERS[i % len(FILTERS)] or ''}",
        ),
        "problem": measure(
            "problem-to-patents",
            n,
            lambda i: c_sme.post(
                "/problem", data={"csrf_token": csrf, "text": PROBLEMS[i % len(PROBLEMS)]}
            ),
        ),
        "dashboard": measure(
            "bureau dashboard", n, lambda i: c_bureau.get("/bureau", params={"year": args.year})
        ),
    }
    weight = page_weight(c_sme, "/search?q=%E7%94%B5%E6%B1%A0")
    print(f"search page weight (HTML + CSS + scripts): {weight / 1024:.0f} KB")
    results["search_page_bytes"] = {"bytes": weight}
    return 0


if __name__ == "__main__":
    sys.exit(main())
