"""What a WeCom robot retries at once, against a real receiver on loopback: only what surely was not posted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from huiju_connectors.retry import RetryPolicy
from huiju_connectors.robots import RobotError, RobotMessage, WeComRobot

from tests.support.robots import RobotReceiver


@pytest.fixture
def receiver() -> Iterator[RobotReceiver]:
    with RobotReceiver("wecom", "k-1") as running:
        yield running


def robot(receiver: RobotReceiver, key: str = "k-1") -> WeComRobot:
    return WeComRobot(key, base_url=receiver.url, timeout=5, policy=RetryPolicy(attempts=3, base_delay=0.0))


def test_a_rate_limited_post_is_retried_a_bounded_number_of_times(receiver: RobotReceiver) -> None:
    receiver.answer_errcode = 45009  # over the robot's 20 messages a minute
    with pytest.raises(RobotError, match="gave up after 3 attempts") as caught:
        robot(receiver).send(RobotMessage("内容"))
    assert len(receiver.posts) == 3 and caught.value.retryable
    assert "k-1" not in str(caught.value)  # the key is the robot's secret


def test_a_refused_message_is_not_retried(receiver: RobotReceiver) -> None:
    with pytest.raises(RobotError, match="errcode 93000"):
        robot(receiver, key="wrong").send(RobotMessage("内容"))
    assert len(receiver.posts) == 1


def test_a_robot_that_is_down_is_tried_a_bounded_number_of_times_then_reported(receiver: RobotReceiver) -> None:
    receiver.stop()
    with pytest.raises(RobotError, match="gave up after 3 attempts"):
        robot(receiver).send(RobotMessage("内容"))
    receiver.start()
    robot(receiver).send(RobotMessage("内容", message_id="<notice-1@huiju.local>"))
    (posted,) = receiver.posts
    assert posted.headers["X-Huiju-Message-Id"] == "<notice-1@huiju.local>"
