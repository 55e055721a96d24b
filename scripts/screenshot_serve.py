"""The README's picture of the web demo: `talk2face serve` in Debian's chromium, after one prompt.

    python scripts/screenshot_serve.py --model models/synface --out docs/serve.png

Starts the app on a free localhost port, types the prompt, clicks Generate, waits for the faces,
prints the seconds from the click to the faces and saves a screenshot of the page (Playwright,
pointed at /usr/bin/chromium: no browser download).
"""

from __future__ import annotations

import argparse
import socket
import time

from playwright.sync_api import sync_playwright

from talk2face.cli import build_parser
from talk2face.device import cpu_model
from talk2face.serve import launch
from talk2face.shipped import MODEL

# every face of the gallery is decoded (an <img> appears before its pixels do)
FACES_SHOWN = "() => { const ims = [...document.querySelectorAll('#faces img')]; " \
              "return ims.length > 0 && ims.every(im => im.complete && im.naturalWidth > 0); }"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(MODEL))
    parser.add_argument("--prompt", default="a smiling old man with glasses")
    parser.add_argument("--out", default="docs/serve.png")
    args = parser.parse_args()
    with socket.socket() as s:  # a free port, picked by the OS
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["serve", "--model", args.model, "--port", str(port)]
    app = launch(build_parser(argv).parse_args(argv))
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1200, "height": 760})
            page.goto(app.local_url)
            page.get_by_label("description", exact=True).fill(args.prompt)
            clicked = time.perf_counter()
            page.get_by_role("button", name="Generate").click()
            page.wait_for_function(FACES_SHOWN)
            seconds = time.perf_counter() - clicked
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        app.close()
    print(f"wrote {args.out}; the faces appeared {seconds:.2f} s after the click ({cpu_model()})")


if __name__ == "__main__":
    main()
