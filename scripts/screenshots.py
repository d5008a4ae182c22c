"""Screenshots of the running demo for the README (docs/img/), taken as a person sees it.

    scripts/run &                                   # the demo platform
    .venv/bin/python scripts/screenshots.py         # writes docs/img/portal-*.png

Uses Debian's Chromium through Playwright (the same as the browser tests), the demo
sign-ins in var/demo-people.json, and pngquant (apt) when present to keep the files small.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img"
VAR = Path(os.environ.get("TJP_VAR_DIR", ROOT / "var"))
PORTAL = f"http://127.0.0.1:{os.environ.get('TJP_PORT_BASE', '8100')}"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def sign_in(page: Page, role: str) -> None:
    people = json.loads((VAR / "demo-people.json").read_text(encoding="utf-8"))
    person = next(p for p in people if p["role"] == role)
    page.goto(f"{PORTAL}/signin")
    page.get_by_label("邮箱或手机号").fill(person["login"])
    page.get_by_label("密码").fill(person["password"])
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state("networkidle")


def save(page: Page, name: str, height: int = 1300) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    page.screenshot(
        path=str(OUT / f"{name}.png"), clip={"x": 0, "y": 0, "width": 1100, "height": height}
    )
    # Small files for the README: 256-colour PNG where Debian's pngquant is installed.
    if shutil.which("pngquant"):
        subprocess.run(["pngquant", "--force", "--ext", ".png", "256", str(path)], check=True)
    print(path, f"{path.stat().st_size // 1024} KB")


def main() -> int:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 1300}, locale="zh-CN")
        sign_in(page, "sme")
        page.goto(f"{PORTAL}/search?q=电池")
        page.wait_for_load_state("networkidle")
        save(page, "portal-search")
        page.goto(f"{PORTAL}/problem")
        page.get_by_label("您的问题").fill(
            "我们生产锂离子电池，正极材料循环寿命短，充放电几百次后容量衰减明显，需要提高正极材料的循环稳定性"
        )
        page.get_by_role("button", name="查找专利").click()
        page.wait_for_selector(".result-title")
        page.wait_for_load_state("networkidle")
        save(page, "portal-problem")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
