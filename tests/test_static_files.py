"""Static files (the admin's, Swagger UI's, the front page's) come from the web process
itself, DEBUG off, both as `bin/start` runs it (runserver --noreload) and as the README's
broker mode runs it (gunicorn): WhiteNoise serves what `collectstatic` collected, under
content-hashed names, with a far-future cache header, compressed on request."""

from __future__ import annotations

import gzip
import re

import pytest

from tests.fixtures.web import WebServer

FAR_FUTURE = 365 * 24 * 3600  # a year at least: a hashed name never changes content
HASHED = re.compile(r"\.[0-9a-f]{12}\.(css|js|png)$")


@pytest.fixture(params=["web_server", "gunicorn_server"], ids=["runserver", "gunicorn"])
def server(request) -> WebServer:
    return request.getfixturevalue(request.param)


def static_links(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def max_age(cache_control: str) -> int:
    found = re.search(r"max-age=(\d+)", cache_control)
    return int(found.group(1)) if found else 0


def test_admin_stylesheet_is_served_hashed_with_a_far_future_cache_header(server):
    page = server.get("/admin/login/")
    assert page.status == 200, page.text
    [base_css] = [link for link in static_links(page.text)
                  if link.startswith("/static/admin/css/base.")]
    assert HASHED.search(base_css), base_css

    css = server.get(base_css)

    assert css.status == 200
    assert css.headers["content-type"].startswith("text/css")
    assert max_age(css.headers["cache-control"]) >= FAR_FUTURE
    assert "immutable" in css.headers["cache-control"]
    assert b"--header-bg" in css.body


def test_every_asset_of_the_api_docs_is_served(server):
    page = server.get("/api/docs/")
    assert page.status == 200, page.text
    assets = static_links(page.text)
    assert any("/swagger-ui-dist/swagger-ui-bundle." in asset for asset in assets), assets

    for asset in assets:
        answer = server.get(asset)
        assert answer.status == 200, asset
        assert HASHED.search(asset), asset
        assert max_age(answer.headers["cache-control"]) >= FAR_FUTURE, asset
        assert len(answer.body) > 100, asset


def test_the_front_pages_stylesheet_is_served_compressed_on_request(server):
    [stylesheet] = static_links(server.get("/").text)
    plain = server.get(stylesheet)

    compressed = server.get(stylesheet, headers={"Accept-Encoding": "gzip"})

    assert plain.status == compressed.status == 200
    assert compressed.headers.get("content-encoding") == "gzip"
    assert gzip.decompress(compressed.body) == plain.body
    assert b".masthead" in plain.body
