"""Open every page of the built manual in headless Chromium, as a reader would.

    python tools/docs_browser.py [SITE] [--screenshots DIR]

Serves SITE (default build/site: the mkdocs site and the pkgdown site in
``r/``) on a free port of 127.0.0.1 from a thread of this process, drives
Debian's Chromium (/usr/bin/chromium) through its chromedriver
(/usr/bin/chromedriver) with selenium, and checks on every page that

* the title renders (a non-empty ``document.title`` and a visible ``h1``);
* every code block (``pre``) is displayed with text in it;
* every image has loaded (``naturalWidth > 0``; an ``img`` with an empty
  ``src``, which shows nothing, is counted and reported, not failed);
* nothing is fetched from outside the site (the Resource Timing entries);
* the console has no error (a SEVERE log entry: a failed request, a
  script error).

Screenshots of the getting-started pages (the Python site's and the R
site's home and articles) go to DIR (default build/screenshots). Nothing is
downloaded: selenium is given both programs' paths, and Chromium is kept
off the network (no component updates, no sync, no background requests).
"""

import argparse
import functools
import http.server
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("LIONR_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LIONR_CHROMEDRIVER", "/usr/bin/chromedriver")
PAGE_TIMEOUT = 30
# Pages whose screenshots are kept (paths under the site); the R site's
# articles (vignettes) are added as found.
SCREENSHOTS = ("getting-started.html", "index.html", "r/index.html")

# What the page shows, measured in the browser.
PROBE = """
const visible = e => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
const h1 = Array.from(document.querySelectorAll('h1')).filter(visible);
const pres = Array.from(document.querySelectorAll('pre'));
const imgs = Array.from(document.querySelectorAll('img'));
return {
  title: document.title,
  h1: h1.length ? h1[0].innerText.trim() : '',
  pre: pres.length,
  pre_bad: pres.filter(p => !visible(p) || !p.innerText.trim())
              .map(p => p.innerText.trim().slice(0, 40) || '(empty)'),
  img: imgs.length,
  img_bad: imgs.filter(i => i.getAttribute('src') && !(i.complete && i.naturalWidth > 0))
              .map(i => i.src),
  img_empty: imgs.filter(i => !i.getAttribute('src')).length,
  remote: performance.getEntriesByType('resource').map(r => r.name)
              .filter(n => !n.startsWith(location.origin) && !n.startsWith('data:')),
};
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(site):
    """A started server for ``site`` on a free port of 127.0.0.1."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.timeout = 5
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def browser(profile):
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium manager: never download
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-default-apps",
                 "--disable-extensions", "--window-size=1280,1600",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    driver.set_script_timeout(PAGE_TIMEOUT)
    return driver


def pages_of(site):
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))


def wanted_screenshot(page):
    article = page.startswith("r/articles/") and page != "r/articles/index.html"
    return page in SCREENSHOTS or article


def check_page(driver, base, page):
    """The problems of one page (an empty list when it renders well)."""
    driver.get(f"{base}/{page}")
    # Wait (bounded) until the document and its images have loaded.
    deadline = time.monotonic() + PAGE_TIMEOUT
    while driver.execute_script("return document.readyState") != "complete":
        if time.monotonic() > deadline:
            return ["did not finish loading"], {"title": "", "pre": 0, "img": 0}
        time.sleep(0.1)
    seen = driver.execute_script(PROBE)
    problems = []
    if not seen["title"].strip():
        problems.append("no document title")
    if not seen["h1"] and page != "404.html":
        problems.append("no visible h1 heading")
    problems += [f"code block not shown: {p!r}" for p in seen["pre_bad"]]
    problems += [f"image not loaded: {src}" for src in seen["img_bad"]]
    problems += [f"fetched from outside the site: {url}" for url in seen["remote"]]
    # A page without an icon link makes Chromium ask for /favicon.ico on its
    # own; that request is the browser's, not the page's.
    problems += [f"console: {e['message']}" for e in driver.get_log("browser")
                 if e["level"] == "SEVERE" and "/favicon.ico " not in e["message"]]
    return problems, seen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("site", nargs="?", type=Path, default=ROOT / "build" / "site")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "build" / "screenshots")
    args = parser.parse_args(argv)
    site = args.site.resolve()
    if not (site / "index.html").is_file():
        print(f"No site at {site}: run ./dev docs first.")
        return 1
    for program in (CHROMIUM, CHROMEDRIVER):
        if not os.access(program, os.X_OK):
            print(f"{program} is missing: ./dev setup installs chromium and chromium-driver.")
            return 1
    args.screenshots.mkdir(parents=True, exist_ok=True)
    pages = pages_of(site)
    server = serve(site)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    failures, shots = {}, []
    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="lionr-chromium-") as profile:
            driver = browser(profile)
            try:
                for page in pages:
                    problems, seen = check_page(driver, base, page)
                    empty = seen.get("img_empty", 0)
                    print(f"  {'ok  ' if not problems else 'FAIL'} {page}: "
                          f"{seen['title']!r}, {seen['pre']} code blocks, {seen['img']} images"
                          + (f" ({empty} with an empty src, not checked)" if empty else ""),
                          flush=True)
                    if problems:
                        failures[page] = problems
                    if wanted_screenshot(page):
                        shot = args.screenshots / (page.replace("/", "_")[:-5] + ".png")
                        # The whole page, up to a limit, in one picture.
                        height = driver.execute_script(
                            "return document.documentElement.scrollHeight")
                        driver.set_window_size(1280, min(max(height, 800), 6000))
                        driver.save_screenshot(str(shot))
                        driver.set_window_size(1280, 1600)
                        shots.append(shot)
            finally:
                driver.quit()
    finally:
        server.shutdown()
        server.server_close()
    for page, problems in failures.items():
        print(f"---- {page}:")
        for p in problems:
            print(f"     {p}")
    r_pages = sum(p.startswith("r/") for p in pages)
    print(f"{len(pages)} pages opened in Chromium ({len(pages) - r_pages} Python site, "
          f"{r_pages} R site) in {time.monotonic() - t0:.0f} s; {len(failures)} with problems")
    print("Screenshots: " + ", ".join(str(s.relative_to(ROOT)) if ROOT in s.parents else str(s)
                                      for s in shots))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
