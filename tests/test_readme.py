"""The README's "Try it" commands, run as written against `scripts/run`.

`scripts/run` starts the whole platform on SQLite with the demo data, in a temporary
var/ directory and on free ports (TJP_VAR_DIR, TJP_PORT_BASE) so a developer's own copy is
left alone; the README's `var/` and ports 8100–8103 are rewritten to those. Each command's
output must be a successful answer: JSON without a problem body, and the facts the README
promises (the upload report, pooled hits for 电池, a ranked need, the city plan's targets).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
MARK = "=== README COMMAND"


def try_it_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Try it", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def commands(block: str) -> list[str]:
    """Shell commands of the block, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in block.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            out.append(current.strip())
            current = ""
    return out


def free_base() -> int:
    """Four consecutive free loopback ports."""
    for base in range(18_100, 19_000, 10):
        ok = True
        for port in range(base, base + 4):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free ports")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    var = tmp_path_factory.mktemp("var")
    base = free_base()
    env = {**os.environ, "TJP_VAR_DIR": str(var), "TJP_PORT_BASE": str(base)}
    log = (var / "run.log").open("w")
    proc = subprocess.Popen(
        ["scripts/run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while "Press Ctrl-C to stop." not in (var / "run.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("scripts/run did not start:\n" + (var / "run.log").read_text()[-3000:])
            time.sleep(1)
        yield var, base
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(var / "matching-index", ignore_errors=True)


def test_scripts_run_prints_the_portal_first_and_a_sign_in_per_role(platform) -> None:  # type: ignore[no-untyped-def]
    var, base = platform
    out = (var / "run.log").read_text()
    urls = re.findall(r"http://127\.0\.0\.1:(\d+)/", out)
    assert urls[0] == str(base)  # the portal is what a person opens
    for role in ("sme", "supplier", "district_bureau", "city_bureau", "admin"):
        assert re.search(rf"^\s+{role}\s+\S+ / \S+", out, re.M), role
    assert httpx.get(f"http://127.0.0.1:{base}/", timeout=30).status_code == 200


def test_readme_try_it_commands(platform) -> None:  # type: ignore[no-untyped-def]
    var, base = platform
    cmds = [c for c in commands(try_it_block()) if c != "scripts/run &"]
    script = ["set -euo pipefail"]
    for i, cmd in enumerate(cmds):
        cmd = cmd.replace("var/", f"{var}/")
        for k in range(4):
            cmd = cmd.replace(f"127.0.0.1:810{k}", f"127.0.0.1:{base + k}")
        if not re.match(r"^[A-Z_]+=", cmd):
            script.append(f"echo '{MARK} {i}'")
        script.append(cmd)
    # tjp-upload's default catalog URL is 8101 like the README's; point it at this copy.
    env = {**os.environ, "TJP_CATALOG_URL": f"http://127.0.0.1:{base + 1}"}
    run = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    outputs = {}
    for part in run.stdout.split(MARK)[1:]:
        n, _, body = part.partition("\n")
        outputs[cmds[int(n)]] = body.strip()
    assert len(outputs) == sum(1 for c in cmds if not re.match(r"^[A-Z_]+=", c))
    for cmd, body in outputs.items():
        assert "tjpatent.example/problems" not in body, f"{cmd}\n→ {body[:1000]}"
    upload = next(b for c, b in outputs.items() if "tjp-upload" in c)
    assert re.search(r"\b6\b", upload) and re.search(r"\b2\b", upload), upload
    search = json.loads(next(b for c, b in outputs.items() if "/v1/patents" in c))
    assert search["items"] and all(
        "电池" in json.dumps(p, ensure_ascii=False) for p in search["items"]
    )
    need = json.loads(next(b for c, b in outputs.items() if "/v1/needs -H" in c))
    assert need["title"] == "锂电池正极材料循环寿命提升"
    matches = json.loads(next(b for c, b in outputs.items() if "/matches" in c))
    assert matches["hits"] and all("confidence" in h for h in matches["hits"])
    progress = json.loads(next(b for c, b in outputs.items() if "/progress" in c))
    assert "3000" in json.dumps(progress) and "1000" in json.dumps(progress)
