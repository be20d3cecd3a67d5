"""service/runtime.py: what `tenantctl serve` and `worker` do to the heap once started."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from service.runtime import freeze_startup_heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process goes on collecting as before


def test_start_up_garbage_is_collected_and_what_lives_is_left_out_of_collections(unfrozen: None) -> None:
    garbage_a, garbage_b = Node(), Node()
    garbage_a.other, garbage_b.other = garbage_b, garbage_a  # a cycle only the collector can free
    gone = weakref.ref(garbage_a)
    del garbage_a, garbage_b
    alive = Node()

    frozen = freeze_startup_heap()

    assert gone() is None  # collected before the freeze, not frozen for ever
    assert frozen > 0 and gc.get_freeze_count() > 0
    # A full collection no longer walks what start-up left alive ...
    assert not any(obj is alive for obj in gc.get_objects())
    # ... but still walks what was made afterwards.
    later = Node()
    assert any(obj is later for obj in gc.get_objects())
