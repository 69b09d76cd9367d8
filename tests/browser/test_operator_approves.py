"""The on-call operator's path in a real browser, against KRP started as `bin/start`
starts it: from the request list to a pending prod request's page, approved with the
page's own button, and the status badge changes from pending approval to the outcome."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.fixtures.browser import login, wait_until
from tests.fixtures.web import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def badge(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, "#content .krp-badge").get_attribute("class")


def test_operator_opens_a_pending_prod_request_and_approves_it_with_the_button(
    browser, web_server
):
    requester = make_user("rita", "rita-password", team="payments", staff=False)
    make_user("otto", "otto-password", team="payments",
              permissions=["provisioning.view_resourcerequest",
                           "provisioning.approve_resourcerequest"])
    made = web_server.submit(requester, environment="prod", resource_type="sqs_queue",
                             name="refunds")
    assert made["status"] == "pending_approval"

    login(browser, web_server.url, "otto", "otto-password")
    browser.find_element(By.LINK_TEXT, "Resource requests").click()
    [row] = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert "krp-status-pending_approval" in row.find_element(
        By.CSS_SELECTOR, ".krp-badge").get_attribute("class")
    row.find_element(By.CSS_SELECTOR, "th a").click()
    wait_until(browser, lambda d: d.current_url.endswith(f"/{made['id']}/change/"),
               "the list's link did not open the request's page")
    assert "krp-status-pending_approval" in badge(browser)

    browser.find_element(By.ID, "krp-approve").click()

    wait_until(browser, lambda d: "approved" in d.find_element(
        By.CSS_SELECTOR, "ul.messagelist").text, "no message said the request was approved")
    # Eager mode (bin/start): the job ran in the web process before the page came back.
    assert "krp-status-succeeded" in badge(browser)
    assert not browser.find_elements(By.ID, "krp-approve")  # nothing left to approve
