"""A super stream's partition streams are whole, or they are refused (`missing_partitions`).

Routing by the partitions that are left (`Router(len(streams))`) would put every symbol
where no other client looks for it; a gap in our names (``<super stream>-<i>``) shows which
were deleted. Vectors: (partition streams in routing order, the missing ones).
"""

from __future__ import annotations

import pytest

from partitioning.topology import missing_partitions


@pytest.mark.parametrize(
    ("streams", "missing"),
    [
        (["t-0", "t-1", "t-2"], []),
        (["t-0"], []),
        (["t-0", "t-2"], ["t-1"]),
        (["t-1", "t-2"], ["t-0"]),
        (["t-3"], ["t-0", "t-1", "t-2"]),
        (["t-0", "t-1", "t-4"], ["t-2", "t-3"]),
        (["t-0", "t-1"], []),  # the last ones deleted leave no trace: a smaller super stream
    ],
)
def test_a_gap_in_our_partition_names_names_the_streams_deleted(
    streams: list[str], missing: list[str]
) -> None:
    assert missing_partitions("t", streams) == missing


@pytest.mark.parametrize(
    "streams",
    [
        ["t-amer", "t-emea", "t-apac"],  # another tool's routing keys
        ["t-0", "t-amer"],
        ["t-00", "t-2"],  # a leading zero is not one of our names
        ["u-1", "u-2"],  # another super stream's names
        [],
    ],
)
def test_names_not_all_ours_say_nothing_about_gaps(streams: list[str]) -> None:
    assert missing_partitions("t", streams) == []


def test_a_super_stream_name_with_dashes_and_digits_is_read_from_its_end() -> None:
    assert missing_partitions("md-2", ["md-2-0", "md-2-2"]) == ["md-2-1"]
