#!/usr/bin/env python3
"""Open an HTML report from disk in headless Chromium and check it like a reader's browser would.

Reports: console errors, every network request the page made (only the report file itself is
allowed), render time (navigation start to load event, from the Navigation Timing API), file size,
screenshots of the top of the page at 1280 px and 390 px wide (plus a full-page one at each), and
the characters of the page's text that no installed font can draw (drawn as boxes, "tofu"; for a
Chinese report install a CJK font, e.g. Debian's fonts-wqy-zenhei or fonts-noto-cjk).

Needs Debian's chromium and chromium-driver (``apt-get install -y chromium chromium-driver``) and
the Python package selenium. Usage:

    python scripts/browser_check.py out/report.html --out out/screenshots

Exit 0 when there are no console errors and no network requests, 1 otherwise, 4 when Chromium or
selenium is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM_CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
DRIVER_CANDIDATES = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
WIDTHS = {"desktop": (1280, 900, False), "phone": (390, 844, True)}


def find_browser() -> tuple[str, str] | None:
    """Paths of the Chromium binary and its chromedriver, or None when either is missing."""
    browser = next((p for p in CHROMIUM_CANDIDATES if Path(p).exists()), shutil.which("chromium"))
    driver = next((p for p in DRIVER_CANDIDATES if Path(p).exists()), shutil.which("chromedriver"))
    return (browser, driver) if browser and driver else None


def _driver(browser: str, driver_path: str, profile: str) -> Any:
    """A headless Chromium WebDriver with performance (network) and browser (console) logs."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-default-apps",
                 "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=opts)


def _network_requests(drv: Any, page_url: str) -> list[str]:
    """URLs of requests made by the report (from the DevTools performance log): any request whose
    document is the report, and any http(s)/ws/ftp/file request at all, except the report itself.
    (Chromium's own chrome:// pages, e.g. the start tab, are not the report's requests.)"""
    urls = []
    for entry in drv.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") != "Network.requestWillBeSent":
            continue
        params = msg["params"]
        url = params["request"]["url"]
        external = url.split(":", 1)[0] in {"http", "https", "ws", "wss", "ftp", "file"}
        if url != page_url and (params.get("documentURL") == page_url or external):
            urls.append(url)
    return urls


def _screenshots(drv: Any, out: Path, name: str, width: int, height: int, mobile: bool) -> dict:
    """Viewport screenshot of the top and a full-page one at ``width``."""
    import base64

    drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    drv.refresh()
    top = out / f"{name}_{width}_top.png"
    drv.save_screenshot(str(top))
    full_h = drv.execute_script("return document.documentElement.scrollHeight")
    scroll_w = drv.execute_script("return document.documentElement.scrollWidth")
    shot = drv.execute_cdp_cmd("Page.captureScreenshot", {
        "captureBeyondViewport": True, "clip": {"x": 0, "y": 0, "width": width,
                                                "height": min(full_h, 16000), "scale": 1}})
    full = out / f"{name}_{width}_full.png"
    full.write_bytes(base64.b64decode(shot["data"]))
    return {"top": str(top), "full": str(full), "page_height": full_h,
            "horizontal_overflow_px": max(0, scroll_w - width)}


# For each distinct non-ASCII character of the page's text (up to a limit), draw it on a canvas in
# the body's font and compare the pixels with the drawing of a noncharacter (U+10FFFF), which every
# font stack draws as its missing-glyph box: identical pixels mean the character is tofu.
_MISSING_GLYPHS_JS = """
const limit = arguments[0];
const chars = [...new Set([...document.body.innerText].filter(c => c.codePointAt(0) > 0x7f
                                                         && !/\\s/.test(c)))].slice(0, limit);
const font = getComputedStyle(document.body).font.replace(/^.*?(\\d+(\\.\\d+)?px)/, '32px');
const canvas = document.createElement('canvas'); canvas.width = 48; canvas.height = 48;
const ctx = canvas.getContext('2d', {willReadFrequently: true});
function draw(c) {
  ctx.clearRect(0, 0, 48, 48); ctx.font = font; ctx.fillStyle = '#000';
  ctx.textBaseline = 'middle'; ctx.fillText(c, 4, 24);
  return ctx.getImageData(0, 0, 48, 48).data.join(',');
}
const box = draw(String.fromCodePoint(0x10FFFF));
return {checked: chars.length, missing: chars.filter(c => draw(c) === box)};
"""


def missing_glyphs(drv: Any, limit: int = 600) -> dict[str, Any]:
    """Characters of the page's text that render as the missing-glyph box (see above)."""
    return drv.execute_script(_MISSING_GLYPHS_JS, limit)


def check_report(path: Path, out: Path) -> dict[str, Any]:
    """Open ``path`` from disk; return errors, requests, timing, size and screenshot paths."""
    found = find_browser()
    if found is None:
        raise RuntimeError("chromium/chromedriver not found (apt-get install -y chromium "
                           "chromium-driver)")
    out.mkdir(parents=True, exist_ok=True)
    url = path.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="audit-chromium-") as profile:
        drv = _driver(found[0], found[1], profile)
        try:
            drv.set_window_size(1280, 900)
            t0 = time.perf_counter()
            drv.get(url)
            wall = time.perf_counter() - t0
            nav = drv.execute_script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "return n ? [n.domContentLoadedEventEnd, n.loadEventEnd] : null;")
            console = [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"]
            requests = _network_requests(drv, url)
            glyphs = missing_glyphs(drv)
            shots = {name: _screenshots(drv, out, path.stem, w, h, m)
                     for name, (w, h, m) in WIDTHS.items()}
            console += [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"]
            requests += _network_requests(drv, url)
        finally:
            drv.quit()
    return {"file": str(path), "size_bytes": path.stat().st_size,
            "load_event_ms": nav[1] if nav else None, "dom_content_loaded_ms": nav[0] if nav else None,
            "get_wall_s": round(wall, 3), "console_errors": [e["message"] for e in console],
            "network_requests": sorted(set(requests)), "screenshots": shots,
            "glyphs_checked": glyphs["checked"], "missing_glyphs": glyphs["missing"]}


def main(argv: list[str] | None = None) -> int:
    """CLI: print the check's JSON; exit 1 on console errors or network requests."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--out", type=Path, default=Path("screenshots"))
    args = ap.parse_args(argv)
    if not args.report.is_file():
        print(f"{args.report}: file: not found (fix: pass a report.html)", file=sys.stderr)
        return 4
    try:
        import selenium  # noqa: F401
    except ImportError:
        print("selenium: not installed (fix: pip install selenium)", file=sys.stderr)
        return 4
    if find_browser() is None:
        print("chromium: not found (fix: apt-get install -y chromium chromium-driver)",
              file=sys.stderr)
        return 4
    result = check_report(args.report, args.out)
    print(json.dumps(result, indent=2))
    return 1 if result["console_errors"] or result["network_requests"] else 0


if __name__ == "__main__":
    sys.exit(main())
