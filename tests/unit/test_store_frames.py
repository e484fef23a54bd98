"""A store frame has no answer: an answer to a later request on the same connection proves it
processed (`superticks.streams._StoreFrames`), and what no answer proved is what `Admin.seal`
writes behind."""

from __future__ import annotations

from superticks.streams import _StoreFrames


def test_frames_no_answer_followed_are_unproved_with_their_highest_offset() -> None:
    frames = _StoreFrames()
    frames.wrote("ticks-0", "g", 10)
    frames.wrote("ticks-0", "g", 20)
    frames.wrote("ticks-1", "g", 5)

    assert frames.unproved() == {("ticks-0", "g"): 20, ("ticks-1", "g"): 5}


def test_an_answer_proves_the_frames_written_before_its_request_and_no_later_one() -> None:
    frames = _StoreFrames()
    frames.wrote("ticks-0", "g", 10)
    frames.wrote("ticks-1", "g", 5)
    asked_after = frames.written  # a stored_offset request goes out here
    frames.wrote("ticks-1", "g", 7)

    frames.answered(asked_after)

    assert frames.unproved() == {("ticks-1", "g"): 7}


def test_an_older_answer_after_a_newer_one_proves_nothing_more() -> None:
    frames = _StoreFrames()
    frames.wrote("ticks-0", "g", 10)
    first = frames.written
    frames.wrote("ticks-0", "g", 20)
    second = frames.written

    frames.answered(second)
    frames.wrote("ticks-0", "g", 30)
    frames.answered(first)

    assert frames.unproved() == {("ticks-0", "g"): 30}
