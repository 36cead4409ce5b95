"""The widget's files: versioned, long-cached, with the README's SRI hash true for what is served."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from supportflow.bootstrap import bootstrap
from supportflow.settings import PROJECT_ROOT, load_settings
from supportflow.web import create_app
from supportflow.web.widget_assets import STATIC, WidgetAssets
from tests.fakes import RecordingQueue
from tests.helpers import readme_snippet


@pytest.fixture
def web(redis_url: str, flows_dir: Path) -> Any:
    settings = load_settings({"redis_url": redis_url, "flows_dir": flows_dir,
                              "rate_limits_enabled": False})
    services = bootstrap(settings, queue=RecordingQueue(), assistants=object())  # type: ignore[arg-type]
    return create_app({"TESTING": True, "SUPPORTFLOW_SERVICES": services}).test_client()


def sri(body: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()


def test_the_readme_snippet_names_the_served_script_and_its_integrity(web: Any) -> None:
    snippet = readme_snippet()
    path = re.search(r'src="https://support\.example\.com(/static/widget/[^"]+/widget\.js)"', snippet)
    integrity = re.search(r'integrity="([^"]+)"', snippet)
    assets = WidgetAssets.load()
    current = (f'the README\'s embed snippet is stale; use src=".../{assets.path("widget.js")}" '
               f'integrity="{assets.integrity("widget.js")}"')
    assert path and integrity and 'crossorigin="anonymous"' in snippet, current
    served = web.get(path.group(1))
    assert served.status_code == 200, current
    assert sri(served.data) == integrity.group(1), current


def test_versioned_files_are_immutable_readable_by_any_site_and_never_change_under_a_url(
    web: Any
) -> None:
    assets = WidgetAssets.load()
    for name, kind in (("widget.js", "text/javascript"), ("widget.css", "text/css")):
        served = web.get(assets.path(name))
        assert served.status_code == 200 and served.content_type.startswith(kind)
        assert served.data == (STATIC / name).read_bytes()
        cache = served.headers["Cache-Control"]
        assert "immutable" in cache and int(re.search(r"max-age=(\d+)", cache).group(1)) >= 31536000  # type: ignore[union-attr]
        assert served.headers["Access-Control-Allow-Origin"] == "*"  # SRI across origins needs CORS
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert web.get(assets.path(name), headers={"If-None-Match": served.headers["ETag"]}
                       ).status_code == 304
    for stale in ("/static/widget/0123456789abcdef/widget.js", f"/static/widget/{assets.version}/x.js"):
        missing = web.get(stale)
        assert missing.status_code == 404
        assert assets.path("widget.js") in missing.get_json()["error"]["message"]


def test_the_demo_page_embeds_the_versioned_script_with_its_integrity(web: Any) -> None:
    assets = WidgetAssets.load()
    page = web.get("/demo").get_data(as_text=True)
    assert f'src="{assets.path("widget.js")}" integrity="{assets.integrity("widget.js")}"' in page


def test_the_widget_builds_its_markup_without_html_strings_or_inline_styles() -> None:
    # A host page's strict CSP (no 'unsafe-inline', Trusted Types) must not block any of it.
    source = (PROJECT_ROOT / "supportflow" / "web" / "static" / "widget.js").read_text()
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                      "new Function", '"style"', "'style'", "cssText", "<style"):
        assert forbidden not in source, forbidden
