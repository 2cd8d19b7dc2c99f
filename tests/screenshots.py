"""`make screenshots`: a PNG of each main page in docs/screenshots/, taken with Debian's chromium
from a real `appliance run` on a throwaway demo site (1920×1080 for office screens, 1280×800
for the 10-inch kiosk)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from appliance.site import init_site
from tests.browser import chromium, log_in
from tests.helpers import APPLIANCE
from tests.test_runtime import PASSWORD, add_user, start, stop, wait_ready

OUT = Path(__file__).parent.parent / "docs" / "screenshots"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "site"
        init_site(data, "demo-county-01", "演示县公共资源交易中心")
        for name, role in (("zhang.wei", "staff"), ("li.na", "supervisor"), ("admin", "admin")):
            add_user(data, name, role)
        for text in ("开标室设备巡检正常", "评标区门禁测试完成"):
            subprocess.run([APPLIANCE, "note", "--data", str(data), text], check=True, capture_output=True)
        code = json.loads(subprocess.run([APPLIANCE, "kiosk", "add", "评标区入口闸机", "--data", str(data)],
                                         check=True, capture_output=True, text=True).stdout)["code"]
        proc, port = start(data)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(proc, port)
            with chromium() as browser:
                office = {"viewport": {"width": 1920, "height": 1080}, "locale": "zh-CN"}

                def shot(page, name: str) -> None:
                    page.wait_for_timeout(600)  # let the live feed paint
                    page.screenshot(path=str(OUT / f"{name}.png"))
                    print(OUT / f"{name}.png")

                page = browser.new_context(**office).new_page()
                page.goto(base + "/login")
                shot(page, "login")
                log_in(page, base, "admin", PASSWORD)
                page.wait_for_url(base + "/console/")
                shot(page, "console-home")
                page.goto(base + "/console/admin/users")
                shot(page, "admin-accounts")
                page.goto(base + "/console/admin/kiosks")
                shot(page, "admin-kiosks")
                page.click("button[value=en]")
                page.goto(base + "/console/")
                shot(page, "console-home-en")

                page = browser.new_context(**office).new_page()
                log_in(page, base, "li.na", PASSWORD)
                page.wait_for_url(base + "/review/")
                page.click("#verify")
                shot(page, "review")

                kiosk = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN").new_page()
                kiosk.goto(base + "/kiosk/enrol")
                kiosk.fill("input[name=code]", code)
                kiosk.click("#enrol-submit")
                kiosk.wait_for_url(base + "/kiosk/")
                shot(kiosk, "kiosk-gate")
        finally:
            stop(proc)


if __name__ == "__main__":
    sys.exit(main())
