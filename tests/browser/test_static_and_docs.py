"""What a person sees in a real browser, against KRP started as `bin/start` starts it
(runserver --noreload, DEBUG off): a styled admin, a login that works, the API docs with
their operations, and the front page with their teams' recent requests."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.fixtures.browser import login, wait_until
from tests.fixtures.web import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Django's admin (base.css): --header-bg is #417690, --header-color #ffc; the body's font
# list starts with "Segoe UI". A browser's defaults are a transparent header, black text and
# a serif font.
ADMIN_HEADER_BACKGROUND = "rgb(65, 118, 144)"
ADMIN_HEADER_COLOUR = "rgb(255, 255, 204)"


def computed(driver, selector: str, prop: str) -> str:
    return driver.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0]))"
        ".getPropertyValue(arguments[1]);", selector, prop)


def test_admin_login_page_is_styled_by_the_admin_stylesheets(browser, web_server):
    browser.get(f"{web_server.url}/admin/login/")

    assert computed(browser, "#header", "background-color") == ADMIN_HEADER_BACKGROUND
    assert computed(browser, "#header", "color") == ADMIN_HEADER_COLOUR
    assert computed(browser, "body", "font-family").startswith('"Segoe UI"')


def test_operator_signs_in_through_the_form_and_reaches_the_admin_index(browser, web_server):
    make_user("olga", "olga-password", team="platform",
              permissions=["provisioning.view_resourcerequest"])

    login(browser, web_server.url, "olga", "olga-password")

    assert browser.find_element(By.CSS_SELECTOR, "#content h1").text == "Site administration"
    assert browser.find_element(By.LINK_TEXT, "Resource requests").is_displayed()
    assert "olga" in browser.find_element(By.ID, "user-tools").text.lower()


def test_api_docs_render_every_operation_of_the_schema(browser, web_server):
    schema = web_server.get("/api/schema/?format=json").json()
    documented = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }

    browser.get(f"{web_server.url}/api/docs/")
    wait_until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock"))
               >= len(documented), "Swagger UI rendered no operations")
    shown = {
        tuple(pair) for pair in browser.execute_script(
            "return Array.from(document.querySelectorAll('.opblock')).map(block => ["
            "  block.querySelector('.opblock-summary-method').textContent.trim(),"
            "  block.querySelector('.opblock-summary-path').dataset.path]);")
    }

    assert {("GET", "/api/v1/requests/"), ("POST", "/api/v1/requests/")} <= shown
    assert shown == documented


def test_front_page_lists_the_signed_in_users_recent_requests(browser, web_server):
    user = make_user("pia", "pia-password", team="platform",
                     permissions=["provisioning.view_resourcerequest"])
    # Through the server's API, as a person would; prod waits for approval, so no AWS.
    made = web_server.submit(user, environment="prod", resource_type="sqs_queue",
                             name="invoices")

    login(browser, web_server.url, "pia", "pia-password", next_path="/")

    [row] = browser.find_elements(By.CSS_SELECTOR, "#recent-requests tbody tr")
    cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
    assert cells[:4] == ["Pending Approval", "sqs_queue", "invoices", "prod"]
    created = row.find_element(By.TAG_NAME, "time").get_attribute("datetime")
    assert created[:19] == made["created_at"][:19]
    row.find_element(By.LINK_TEXT, "invoices").click()
    wait_until(browser, lambda d: d.current_url.endswith(
        f"/admin/provisioning/resourcerequest/{made['id']}/change/"),
        "the request's link did not lead to its admin page")
    assert "invoices" in browser.find_element(By.ID, "content").text
