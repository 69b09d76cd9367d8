"""What every registered resource type declares about itself, proved for each at once.

Reconcile names the type of whatever it finds by asking each registered type whether an
ARN is one of its own, so each must recognise its own ARNs and no other type's.
"""

import pytest

from provisioning.resources import REGISTRY

ACCOUNT, REGION = "111111111111", "ap-northeast-2"

# An ARN of each type as AWS gives it, and the physical name it holds.
ARNS = {
    "s3_bucket": ("arn:aws:s3:::krp-alpha-logs", "krp-alpha-logs"),
    "sqs_queue": (f"arn:aws:sqs:{REGION}:{ACCOUNT}:krp-alpha-jobs.fifo", "krp-alpha-jobs.fifo"),
    "sns_topic": (f"arn:aws:sns:{REGION}:{ACCOUNT}:krp-alpha-events", "krp-alpha-events"),
    "dynamodb_table": (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/krp-alpha-orders",
                       "krp-alpha-orders"),
    # A role's ARN carries its path.
    "iam_role": (f"arn:aws:iam::{ACCOUNT}:role/krp/krp-alpha-reader", "krp-alpha-reader"),
}

# ARNs of kinds KRP does not make, some from the very services its types use.
FOREIGN_ARNS = [
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:krp-alpha-logs",
    f"arn:aws:iam::{ACCOUNT}:policy/krp/krp-alpha-reader",
    f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:global-table/krp-alpha-orders",
    f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0",
]


@pytest.fixture(params=sorted(REGISTRY), ids=str)
def type_name(request) -> str:
    return request.param


def test_every_registered_type_has_an_example_arn_here():
    assert set(ARNS) == set(REGISTRY)


def test_a_type_reads_the_physical_name_from_an_arn_of_its_own(type_name):
    arn, physical_name = ARNS[type_name]

    assert REGISTRY[type_name].physical_name_in(arn) == physical_name


def test_a_type_does_not_take_another_types_arn_for_its_own(type_name):
    others = {name: arn for name, (arn, _) in ARNS.items() if name != type_name}

    taken = {name: REGISTRY[type_name].physical_name_in(arn) for name, arn in others.items()}

    assert taken == dict.fromkeys(others)


def test_no_type_takes_an_arn_of_a_kind_krp_does_not_make(type_name):
    assert [REGISTRY[type_name].physical_name_in(arn) for arn in FOREIGN_ARNS] == [
        None
    ] * len(FOREIGN_ARNS)
