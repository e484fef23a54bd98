"""A partition's unconfirmed records: confirms settle them in id order, whole runs at a time,
and whatever arrives out of order waits for the ids before it."""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from partitioning.inflight import InFlight, Segment


@dataclass
class Ticket:
    remaining: int


def _segment(first: int, count: int, ticket: Ticket) -> Segment[Ticket]:
    ids = range(first, first + count)
    return Segment(ids, [b"h%d" % i for i in ids], [b"b%d" % i for i in ids], ticket)


def _two_calls() -> tuple[InFlight[Ticket], Ticket, Ticket]:
    a, b = Ticket(3), Ticket(2)
    inflight: InFlight[Ticket] = InFlight()
    inflight.add(_segment(1, 3, a))
    inflight.add(_segment(4, 2, b))
    return inflight, a, b


def test_a_run_of_ids_in_order_settles_whole_calls_at_once() -> None:
    inflight, a, b = _two_calls()
    finished: list[Ticket] = []
    assert inflight.confirm([1, 2, 3, 4, 5], finished) == 5
    assert finished == [a, b]
    assert not inflight
    assert inflight.ticks == 0


def test_a_call_is_finished_only_when_its_last_tick_is_confirmed() -> None:
    inflight, a, _ = _two_calls()
    finished: list[Ticket] = []
    assert inflight.confirm([1, 2], finished) == 2
    assert finished == []
    assert a.remaining == 1
    assert inflight.confirm([3, 4], finished) == 2
    assert finished == [a]
    assert inflight.ticks == 1


def test_an_id_confirmed_before_an_earlier_one_waits_for_it() -> None:
    inflight, a, _ = _two_calls()
    finished: list[Ticket] = []
    assert inflight.confirm([2, 3], finished) == 0  # 1 is not confirmed yet
    assert a.remaining == 3
    assert inflight.confirm([1], finished) == 3
    assert finished == [a]


def test_a_duplicate_confirm_counts_nothing() -> None:
    inflight, _, _ = _two_calls()
    finished: list[Ticket] = []
    inflight.confirm([1, 2], finished)
    assert inflight.confirm([1, 2], finished) == 0
    assert inflight.confirm([2, 3, 4], finished) == 2  # 2 again, then 3 and 4
    assert inflight.ticks == 1


def test_a_gap_in_a_confirm_settles_only_up_to_the_gap() -> None:
    inflight, _, b = _two_calls()
    finished: list[Ticket] = []
    assert inflight.confirm([1, 2, 3, 5], finished) == 3
    assert b.remaining == 2
    assert inflight.confirm([4], finished) == 2
    assert finished[-1] is b


def test_after_a_reconnect_the_stored_sequence_confirms_a_prefix_and_the_rest_is_re_sent() -> None:
    inflight, a, b = _two_calls()
    finished: list[Ticket] = []
    inflight.confirm([1], finished)
    assert inflight.confirm_through(4, finished) == 3  # the broker stored up to 4
    assert finished == [a]
    assert b.remaining == 1
    [(segment, start)] = list(inflight.unconfirmed())
    assert (segment.ids[start], segment.heads[start], segment.bodies[start]) == (5, b"h5", b"b5")


def test_nothing_stored_past_the_sent_ids_confirms_everything_once() -> None:
    inflight, a, b = _two_calls()
    finished: list[Ticket] = []
    assert inflight.confirm_through(0, finished) == 0
    assert [start for _, start in inflight.unconfirmed()] == [0, 0]
    assert inflight.confirm_through(99, finished) == 5
    assert finished == [a, b]
    assert inflight.confirm_through(99, finished) == 0


def test_caller_ids_with_gaps_settle_in_their_order() -> None:
    ticket = Ticket(3)
    inflight: InFlight[Ticket] = InFlight()
    inflight.add(Segment([16, 17, 33], [b"", b"", b""], [b"x", b"y", b"z"], ticket))
    finished: list[Ticket] = []
    assert inflight.ticket_of(17) is ticket
    assert inflight.ticket_of(18) is None
    assert inflight.confirm([16, 17], finished) == 2
    assert inflight.ticket_of(16) is None  # confirmed: no longer in flight
    assert inflight.confirm_through(32, finished) == 0
    assert inflight.confirm([33], finished) == 1
    assert finished == [ticket]


def test_a_sub_entry_record_counts_the_ticks_it_carries() -> None:
    ticket = Ticket(250)
    inflight: InFlight[Ticket] = InFlight()
    inflight.add(Segment(range(7, 10), [b"a", b"b", b"c"], [b"", b"", b""], ticket, [100, 100, 50]))
    assert inflight.ticks == 250
    finished: list[Ticket] = []
    assert inflight.confirm([7, 8], finished) == 200
    assert inflight.confirm([9], finished) == 50
    assert finished == [ticket]


def test_a_message_id_is_in_flight_with_the_sub_entry_batch_under_its_last_id() -> None:
    # two batches of caller ids: (3, 5, 9) under id 9, (12, 20) under id 20
    ticket = Ticket(5)
    inflight: InFlight[Ticket] = InFlight()
    inflight.add(Segment([9, 20], [b"a", b"b"], [b"", b""], ticket, [3, 2]))
    assert inflight.ticket_of(5) is ticket
    assert inflight.ticket_of(12) is ticket
    assert inflight.ticket_of(21) is None
    assert inflight.confirm([9], []) == 3
    assert inflight.ticket_of(5) is None  # its batch is confirmed
    assert inflight.ticket_of(12) is ticket


def test_clear_hands_back_each_unfinished_call_once() -> None:
    inflight, a, b = _two_calls()
    inflight.confirm([1], [])
    assert inflight.clear() == [a, b]
    assert not inflight
    assert inflight.confirm([2], []) == 0


@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=8),
    cuts=st.lists(st.integers(1, 60), min_size=1, max_size=30),
    shuffle=st.randoms(use_true_random=False),
    duplicates=st.lists(st.integers(0, 400), max_size=10),
)
def test_any_confirm_order_settles_every_call_exactly_once(
    sizes: list[int], cuts: list[int], shuffle: random.Random, duplicates: list[int]
) -> None:
    inflight: InFlight[Ticket] = InFlight()
    tickets, first = [], 1
    for size in sizes:
        tickets.append(Ticket(size))
        inflight.add(_segment(first, size, tickets[-1]))
        first += size
    ids = list(range(1, first))
    frames, at = [], 0
    for cut in cuts * (len(ids) // sum(cuts) + 1):  # confirm frames of any size...
        frames.append(ids[at : at + cut])
        at += cut
    shuffle.shuffle(frames)  # ...arriving in any order, some ids twice
    frames.append([d for d in duplicates if d < first])
    finished: list[Ticket] = []
    done = sum(inflight.confirm(frame, finished) for frame in frames)
    assert done == first - 1
    assert sorted(map(id, finished)) == sorted(map(id, tickets))
    assert all(t.remaining == 0 for t in tickets)
    assert not inflight
    assert inflight.ticks == 0
