"""`krp sandbox`: the sandbox AWS on loopback, with its fault-injection controls."""

import json
import socket
import urllib.request

import pytest

from tests.cli import assert_refused, krp_refused, run_krp
from tests.fixtures.ports import free_loopback_port
from tests.fixtures.processes import manage, start_process


def test_sandbox_starts_says_where_it_listens_and_answers_its_fault_controls(tmp_path):
    port = free_loopback_port()
    sandbox = start_process(
        manage("krp", "sandbox", "--port", str(port), "--throttle-rate", "0.25",
               "--throttle-services", "s3,sqs", "--seed", "7", "--drop-rate", "0.1",
               "--drop-actions", "CreateBucket,CreateQueue"),
        tmp_path / "sandbox.log",
    )
    try:
        sandbox.wait_for("sandbox AWS listening on", timeout=60)
        url = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{url}/_krp/faults", timeout=10) as answer:
            faults = json.loads(answer.read())
    finally:
        sandbox.stop()

    assert f"sandbox AWS listening on {url}" in sandbox.log()
    assert (faults["throttle_rate"], faults["services"]) == (0.25, ["s3", "sqs"])
    assert (faults["drop_rate"], faults["drop_actions"]) == (0.1, ["CreateBucket", "CreateQueue"])
    assert "Traceback" not in sandbox.log()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--throttle-rate", "2", "throttle_rate must be between 0 and 1"),
        ("--latency", "-1", "latency must not be negative"),
        ("--dynamodb-create-delay", "-5", "dynamodb_create_delay must not be negative"),
        ("--drop-rate", "1.5", "drop_rate must be between 0 and 1"),
    ],
)
def test_sandbox_with_a_bad_fault_setting_is_refused_before_it_listens(option, value, message):
    refused = krp_refused("sandbox", "--port", str(free_loopback_port()), option, value)

    assert refused.error == message


def test_sandbox_process_with_a_bad_throttle_rate_exits_non_zero_with_the_message():
    done = run_krp("sandbox", "--port", str(free_loopback_port()), "--throttle-rate", "2")

    assert_refused(done, "throttle_rate must be between 0 and 1")
    assert "listening" not in done.stdout


def test_sandbox_process_on_a_port_in_use_exits_non_zero_with_the_message():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        done = run_krp("sandbox", "--port", str(port))

    # werkzeug itself reports a taken port (and exits 1) before KRP's own OSError handler.
    assert_refused(done, "Address already in use", f"Port {port} is in use")
