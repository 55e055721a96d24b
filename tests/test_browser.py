"""The web demo in a real browser: Debian's chromium driven by Playwright (pytest-playwright).

Playwright is pointed at /usr/bin/chromium, so nothing downloads a browser build; .ci/run
installs chromium when it is missing, so in CI this test always runs.
"""

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from talk2face.facade import Talk2Face

CHROMIUM = Path("/usr/bin/chromium")
# the first face of the gallery has arrived and is decoded (an <img> appears before its pixels do)
FACE_SHOWN = "() => { const im = document.querySelector('#faces img'); return im && im.complete && im.naturalWidth > 0; }"
pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                                reason=f"no {CHROMIUM} (apt-get install chromium); CI installs it and runs this test")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM)}


def test_generate_and_describe_in_the_page(page, tiny_server, tiny_model, tiny_world, capsys):
    page.goto(tiny_server.local_url)
    page.get_by_label("description", exact=True).fill("a smiling old man with glasses")
    start = time.perf_counter()
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function(FACE_SHOWN)
    seconds = time.perf_counter() - start
    first = page.locator("#faces img").first
    with capsys.disabled():
        print(f"\nweb demo: first image {seconds:.2f} s after the click (tiny model)")
    expect(first).to_have_js_property("naturalWidth", 32)  # a face of the model's size, not a placeholder

    face = sorted((tiny_world["synface"] / "test").glob("*.png"))[0]
    page.get_by_role("tab", name="Describe a face").click()
    page.locator("#describe-face input[type=file]").set_input_files(face)
    page.locator("#describe-face img").wait_for()  # the upload has arrived
    page.get_by_role("button", name="Describe").click()
    expect(page.locator("#caption textarea")).to_have_value(Talk2Face.from_pretrained(tiny_model).caption([face])[0])
