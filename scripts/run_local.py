"""Run the whole platform locally on SQLite: one uvicorn process per service.

    scripts/run            # what the README says; installs, loads demo data, starts
    .venv/bin/python scripts/run_local.py --smoke   # start, check readiness, stop

Data lives in var/ (git-ignored). Demo data and keys are created on the first run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
# TJP_VAR_DIR and TJP_PORT_BASE let a second copy run beside the first (the README test
# does); the defaults are what the README shows.
VAR = Path(os.environ.get("TJP_VAR_DIR", ROOT / "var")).resolve()
BASE = int(os.environ.get("TJP_PORT_BASE", "8100"))
SERVICES = [
    # name, port, module
    ("catalog", BASE + 1, "services.catalog.main"),
    ("matching", BASE + 2, "services.matching.main"),
    ("indicators", BASE + 3, "services.indicators.main"),
    ("portal", BASE, "services.portal.main"),
]


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def available(module: str) -> bool:
    return (ROOT / (module.replace(".", "/") + ".py")).exists()


def env_for(ports: dict[str, int]) -> dict[str, str]:
    env = dict(os.environ)
    url = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    for name in ports:
        env.setdefault(
            f"{name.upper()}_DATABASE_URL", f"sqlite+aiosqlite:///{VAR / (name + '.db')}"
        )
        env.setdefault(f"{name.upper()}_CATALOG_URL", url["catalog"])
        if "matching" in url:
            env.setdefault(f"{name.upper()}_MATCHING_URL", url["matching"])
        if "indicators" in url:
            env.setdefault(f"{name.upper()}_INDICATORS_URL", url["indicators"])
    env.setdefault("MATCHING_INDEX_DIR", str(VAR / "matching-index"))
    env["PYTHONPATH"] = str(ROOT)
    return env


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="start, check /readyz, stop")
    args = ap.parse_args()
    VAR.mkdir(exist_ok=True)
    services = [(n, p, m) for n, p, m in SERVICES if available(m)]
    ports = {n: p for n, p, _ in services}
    env = env_for(ports)
    keys_file = VAR / "demo-keys.json"
    people_file = VAR / "demo-people.json"
    first_start = not (VAR / "catalog.db").exists()
    catalog_cli = [
        sys.executable,
        "-m",
        "services.catalog.cli",
        "--database-url",
        env["CATALOG_DATABASE_URL"],
    ]
    if first_start:
        print("loading demo data into var/catalog.db ...", flush=True)
        subprocess.run(
            [
                *catalog_cli,
                "load-demo",
                "--keys-file",
                str(keys_file),
                "--people-file",
                str(people_file),
            ],
            check=True,
            env=env,
            cwd=ROOT,
        )
    elif not people_file.exists():
        # var/ from before people existed: add the demo people (idempotent).
        subprocess.run(
            [*catalog_cli, "load-demo-people", "--people-file", str(people_file)],
            check=True,
            env=env,
            cwd=ROOT,
        )
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    for name, port, module in services:
        if name == "matching":
            # Its own launcher: MATCHING_WORKERS processes sharing the port.
            cmd = [sys.executable, "-m", "services.matching", "--port", str(port)]
        else:
            cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                f"{module}:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ]
        procs.append((name, subprocess.Popen(cmd, env=env, cwd=ROOT)))

    def stop(*_: object) -> None:
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for _, p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    ok = True
    deadline = time.monotonic() + 90
    for name, port, _ in services:
        path = "/healthz" if name == "portal" else "/readyz"
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            proc = dict(procs)[name]
            if proc.poll() is not None or time.monotonic() > deadline:
                print(f"!! {name} did not become ready", file=sys.stderr)
                ok = False
                break
            time.sleep(0.3)
    if ok and first_start and "indicators" in ports:
        import demo_ledger

        demo_ledger.main(keys_file, catalog=ports["catalog"], indicators=ports["indicators"])
    print(f"\nTianjin patent-transfer platform (SQLite under {shown(VAR)}/):")
    # The portal first: it is what a person opens.
    for name, port, _ in sorted(services, key=lambda s: s[0] != "portal"):
        extra = "" if name == "portal" else f"   API docs: http://127.0.0.1:{port}/docs"
        print(f"  {name:<11} http://127.0.0.1:{port}/{extra}")
    if keys_file.exists():
        print(f"\nDemo API keys (Authorization: Bearer <key>) are in {shown(keys_file)}:")
        for who, key in json.loads(keys_file.read_text(encoding="utf-8")).items():
            print(f"  {who}: {key}")
    if people_file.exists():
        print(f"\nDemo sign-ins (POST /v1/sessions; also in {shown(people_file)}):")
        for p in json.loads(people_file.read_text(encoding="utf-8")):
            admin = ", org admin" if p["org_admin"] else ""
            print(
                f"  {p['role']:<16} {p['login']} / {p['password']}   ({p['organisation']}{admin})"
            )
    if args.smoke or not ok:
        stop()
        return 0 if ok else 1
    print("\nPress Ctrl-C to stop.", flush=True)
    try:
        while all(p.poll() is None for _, p in procs):
            time.sleep(0.5)
        print("a service exited; stopping the others", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
