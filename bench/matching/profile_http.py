"""Where one matching worker's CPU goes per `POST /v1/match`, over real HTTP.

    .venv/bin/python -m bench.matching.profile_http --docs 100000
    .venv/bin/python -m bench.matching.profile_http --smoke      # 2,000 patents (CI)

The same synthetic pool as http_bench.py (one uvicorn worker, SQLite, no feed). The server
runs in this process, so cProfile sees its event loop; the client (sequential requests on
one keep-alive connection, http_bench.latencies) runs in a child process. Three phases on
the same queries: warm-up, an unprofiled run (the server's own CPU per request from
`time.process_time`, the honest figure) and a profiled run (cProfile's per-stage split,
inflated by the profiler's per-call overhead: read it as shares, not as milliseconds).
`--keep DIR` prepares the pool once into DIR and reuses it on the next runs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.matching.corpus import dev_need_ids, load_needs
from bench.matching.http_bench import in_child, latencies, prepare

# (label, file suffix, function): cumulative time of these is the per-stage split. Stages
# nest (the route holds the analysis, the search and the cards); the table says so.
STAGES = [
    ("ASGI app incl. middleware (everything after HTTP parsing)", "shared/app.py", "__call__"),
    ("  rate-limit middleware and below", "shared/ratelimit.py", "__call__"),
    ("  guard middleware and below", "shared/guards.py", "__call__"),
    ("  request body read + JSON parse + pydantic validation", "fastapi/routing.py", "_get_body"),
    ("  request model validation (pydantic)", "fastapi/dependencies/utils.py",
     "solve_dependencies"),
    ("  route body (rank)", "services/matching/api/match.py", "rank"),
    ("    query analysis (analyse_query)", "services/matching/domain/text.py", "analyse_query"),
    ("      segmenter (rjieba)", "services/matching/domain/text.py", "_cut"),
    ("    query vector and cost estimate (MatchIndex.prepare)", "services/matching/domain/index.py",
     "prepare"),
    ("    index search (search_report)", "services/matching/domain/index.py", "search_report"),
    ("      query vector (in prepare, or here before prepare existed)",
     "services/matching/domain/index.py", "_query_vector"),
    ("      coverage / explanation matrix", "services/matching/domain/index.py",
     "_contribution_matrix"),
    ("      term pairs for explanations", "services/matching/domain/index.py", "_term_pairs"),
    ("    cost estimate (MatchIndex.work, before prepare existed)",
     "services/matching/domain/index.py", "work"),
    ("    hit cards (hit_cards)", "services/matching/api/match.py", "hit_cards"),
    ("      snippets", "services/matching/domain/explain.py", "snippet"),
    ("      explanation terms", "services/matching/api/match.py", "explanation_terms"),
    ("    JSON body (orjson render)", "services/matching/api/match.py", "render"),
    ("  metrics (prometheus observe)", "shared/observability.py", "observe_request"),
    ("  access log", "logging/__init__.py", "isEnabledFor"),
]  # fmt: skip


def stage_table(stats: pstats.Stats, requests: int) -> list[tuple[str, float, int]]:
    out = []
    raw = stats.stats  # type: ignore[attr-defined]
    for label, suffix, func in STAGES:
        cum = 0.0
        calls = 0
        for (path, _line, name), (_cc, nc, _tt, ct, _callers) in raw.items():
            if name == func and path.endswith(suffix):
                cum += ct
                calls += nc
        out.append((label, cum * 1000 / requests, calls))
    return out


def top_functions(prof: cProfile.Profile, n: int) -> str:
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(n)
    lines = buf.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(lines[start:])


def answers(port: int, texts: list[str]) -> list[str]:
    """Response bodies for every query text, plus filtered, IPC-hinted and deeper variants:
    two runs that print the same lines gave the same answers (`--answers FILE`)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out = []
    for i, text in enumerate(texts):
        queries: list[dict] = [{"text": text}]
        if i % 5 == 0:
            queries.append({"text": text, "k": 50, "ipc_hints": ["H01M10/0525"],
                            "industries": ["1"]})  # fmt: skip
            queries.append({"text": text, "modes": ["equity"], "title": text[:20]})
        for q in queries:
            conn.request("POST", "/v1/match", json.dumps(q, ensure_ascii=False).encode(),
                         {"content-type": "application/json"})  # fmt: skip
            r = conn.getresponse()
            out.append(f"{r.status} {r.read().decode()}")
    conn.close()
    return out


async def run(args: argparse.Namespace, murl: str, index_dir: str, texts: list[str]) -> dict:
    import uvicorn

    from services.matching.main import create_app
    from services.matching.settings import MatchingSettings
    from shared.testing import free_port

    settings = MatchingSettings(
        database_url=murl,
        index_dir=index_dir,
        workers=1,
        consume_feed=False,  # no catalog here: /v1/match reads only the index and the cards
        catalog_url="http://127.0.0.1:9",
        log_level="WARNING",
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    out: dict = {"docs": args.docs, "requests": args.requests, "loop": type(loop).__module__}

    async def client(n: int) -> list[float]:
        return await loop.run_in_executor(None, in_child, latencies, port, texts, n)

    await client(args.warmup)
    cpu = time.process_time()
    lat = await client(args.requests)
    cpu = time.process_time() - cpu
    out["server_cpu_ms_per_request"] = round(cpu * 1000 / (args.requests + 20), 3)
    out["http_p50_ms"] = round(float(np.percentile(lat, 50)), 2)
    out["http_p99_ms"] = round(float(np.percentile(lat, 99)), 2)
    # cProfile sees only the event loop's thread: the profiled run scores every query there
    # (the service sends long texts and heavy queries to a worker thread).
    from services.matching.api import match

    saved = match.INLINE_CHARS, match.INLINE_WORK
    match.INLINE_CHARS = match.INLINE_WORK = 1 << 60
    prof = cProfile.Profile()
    prof.enable()
    await client(args.requests)
    prof.disable()
    match.INLINE_CHARS, match.INLINE_WORK = saved
    if args.answers:
        lines = await loop.run_in_executor(None, in_child, answers, port, texts)
        args.answers.write_text("\n".join(lines) + "\n", encoding="utf-8")
    server.should_exit = True
    await serving
    stats = pstats.Stats(prof)
    total = sum(
        tt
        for (_path, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items()  # type: ignore[attr-defined]
        if "poll" not in name  # waiting for the next request is not work
    )
    n = args.requests + 20  # latencies() adds 20 warm-up requests of its own
    out["profiled_ms_per_request"] = round(total * 1000 / n, 3)
    out["stages_ms_per_request_profiled"] = {
        label: round(ms, 3) for label, ms, _calls in stage_table(stats, n)
    }
    out["top"] = top_functions(prof, args.top)
    if args.dump:
        prof.dump_stats(args.dump)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--top", type=int, default=30, help="functions listed by own time")
    ap.add_argument("--dump", type=Path, help="also write the raw cProfile stats here")
    ap.add_argument("--answers", type=Path, help="write every query's response body here")
    ap.add_argument("--keep", type=Path, help="prepare the pool here once and reuse it")
    ap.add_argument("--smoke", action="store_true", help="2,000 patents, 60 requests (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.docs, args.requests, args.warmup, args.top = 2_000, 60, 10, 10
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cores; {uptime}", flush=True)
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="tjp-profile-http-"))
    tmp.mkdir(parents=True, exist_ok=True)
    marker = tmp / f"prepared-{args.docs}.json"
    if marker.exists():
        murl, index_dir = json.loads(marker.read_text())
    else:
        t = time.perf_counter()
        murl, index_dir = prepare(args.docs, tmp)
        marker.write_text(json.dumps([murl, index_dir]))
        print(f"prepared {args.docs} synthetic patents in {time.perf_counter() - t:.0f}s")
    needs = load_needs()
    texts = [needs[i].title + "。" + needs[i].description for i in dev_need_ids()]
    # uvicorn.run() would pick uvloop too ("auto"); a plain asyncio loop costs more a request.
    factory: Callable[[], asyncio.AbstractEventLoop]
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        out = runner.run(run(args, murl, index_dir, texts))
    top = out.pop("top")
    stages = out.pop("stages_ms_per_request_profiled")
    print(json.dumps(out, ensure_ascii=False))
    print(
        f"\nPOST /v1/match at {args.docs:,} patents, one worker: cumulative CPU ms per request "
        f"under cProfile ({out['profiled_ms_per_request']} ms profiled vs "
        f"{out['server_cpu_ms_per_request']} ms without the profiler):\n"
    )
    print("| stage (indented = inside the one above) | ms per request (profiled) |")
    print("|---|---|")
    for label, ms in stages.items():
        print(f"| {label.replace('  ', '· ')} | {ms} |")
    print(f"\nTop {args.top} functions by own time (whole profiled run):\n{top}")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"after: {uptime}")


if __name__ == "__main__":
    main()
