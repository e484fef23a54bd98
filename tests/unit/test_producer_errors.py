"""The producer's own errors: what a caller can catch, with messages that say what to do."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from partitioning.producer import Producer, ProducerConfig
from superticks.errors import (
    ProducerClosed,
    ProducerNameInUse,
    PublishTimeout,
    StreamError,
    TickTooLarge,
)
from superticks.streams import FRAME_MAX, PUBLISH_FRAME_OVERHEAD


async def test_flush_past_its_deadline_raises_publish_timeout() -> None:
    producer = Producer(ProducerConfig())  # never started: nothing will ever confirm
    producer.metrics.in_flight = 7
    with pytest.raises(PublishTimeout, match=r"7 ticks still unconfirmed after 0\.01 s"):
        await producer.flush(0.01)


def test_publish_timeout_is_a_stream_error_not_the_builtin_timeout() -> None:
    assert issubclass(PublishTimeout, StreamError)
    assert not issubclass(PublishTimeout, TimeoutError)


def test_a_mistyped_producer_option_is_refused() -> None:
    with pytest.raises(ValidationError, match="batch_sise"):
        ProducerConfig(batch_sise=10)  # type: ignore[call-arg]


@pytest.mark.parametrize("name", ["", "two words", "a/b"])
def test_a_producer_name_that_cannot_name_a_lock_is_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        ProducerConfig(name=name)


def test_an_empty_super_stream_name_is_refused() -> None:
    with pytest.raises(ValidationError):
        ProducerConfig(super_stream="")


def test_name_in_use_says_which_name_and_what_to_do() -> None:
    message = str(ProducerNameInUse("feed", "ticks", 3.0))
    assert "'feed'" in message
    assert "'ticks'" in message
    assert "--name" in message


async def test_send_with_ids_refuses_a_message_over_the_frame_limit_before_sending() -> None:
    producer = Producer(ProducerConfig(name="big"))  # never started: nothing could be sent
    fits = b"x" * (FRAME_MAX - PUBLISH_FRAME_OVERHEAD - 8 - 2 - 3 - 4)  # the record, exactly
    with pytest.raises(ProducerClosed):  # it fits: refused only because the producer is new
        await producer.send_with_ids([(1, "BIG", fits)])
    with pytest.raises(TickTooLarge) as refused:
        await producer.send_with_ids([(1, "BIG", b"small"), (2, "BIG", fits + b"x")])
    assert (refused.value.symbol, refused.value.frame_size) == ("BIG", FRAME_MAX + 1)
    assert producer.metrics.sent == 0
