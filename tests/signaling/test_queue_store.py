"""The queue's Redis scripts against a real Redis: ready-and-reserve in one step, the
reads routing and position updates are built on, and the fan-out payloads."""

from __future__ import annotations

import redis.asyncio as aioredis

from core import fanout, keys
from core.states import TicketState
from signaling.queue_records import Ticket
from signaling.queue_store import QueueStore

NOW = 1000.0


def ticket(tid: str, item: str = "A", at: float = NOW, priority: bool = False) -> Ticket:
    return Ticket(ticket_id=tid, terminal_id=f"T-{tid}", terminal_name="终端", village="村",
                  item_code=item, handling_region="420115", priority=priority, enqueued_at=at,
                  state=TicketState.WAITING, offer_id="", call_id="")


async def waiting(store: QueueStore, t: Ticket) -> None:
    """A ticket of a terminal that is connected (its presence key is alive)."""
    await store.join(t)
    await store.set_presence(keys.terminal_presence(t.terminal_id), f"conn-{t.ticket_id}", 60)


async def clerk(store: QueueStore, name: str = "c1", skills: tuple[str, ...] = ("A", "B")
                ) -> None:
    await store.upsert_clerk(name, "坐席", list(skills), ["42"], "420115", NOW)


async def test_ready_first_sets_ready_and_reserves_the_first_still_waiting(
        redis: aioredis.Redis) -> None:
    store = QueueStore(redis)
    a, b = ticket("tk-a"), ticket("tk-b", at=NOW + 1)
    for t in (a, b):
        await waiting(store, t)
    await clerk(store, "c1")
    await clerk(store, "c2")
    await store.set_status("c2", "ready", "", NOW)
    assert await store.reserve(a, "c2", "of-other", NOW, NOW + 20) == 1

    done = await store.ready_first("c1", "", [a, b], "of-1", NOW, NOW + 20)
    assert done is not None
    record, got = done
    assert got == b
    assert (record.status, record.state, record.offer_id) == ("ready", "offered", "of-1")
    offer = await store.offer("of-1")
    assert offer is not None and offer.ticket_id == "tk-b" and offer.clerk == "c1"
    assert "c1" not in await redis.zrange(keys.clerks_ready(), 0, -1)
    held = await store.ticket("tk-b")
    assert held is not None and held.state == "offered" and held.offer_id == "of-1"


async def test_ready_first_without_a_free_candidate_leaves_the_clerk_ready_and_idle(
        redis: aioredis.Redis) -> None:
    store = QueueStore(redis)
    await clerk(store)
    done = await store.ready_first("c1", "", [], "of-1", NOW, NOW + 20)
    assert done is not None
    record, got = done
    assert got is None and (record.status, record.state) == ("ready", "idle")
    assert await redis.zrange(keys.clerks_ready(), 0, -1) == ["c1"]
    assert await store.offer("of-1") is None


async def test_ready_first_reserves_nothing_for_a_clerk_not_idle(redis: aioredis.Redis) -> None:
    store = QueueStore(redis)
    a, b = ticket("tk-a"), ticket("tk-b", at=NOW + 1)
    for t in (a, b):
        await waiting(store, t)
    await clerk(store)
    await store.set_status("c1", "ready", "", NOW)
    assert await store.reserve(a, "c1", "of-1", NOW, NOW + 20) == 1
    done = await store.ready_first("c1", "", [b], "of-2", NOW, NOW + 20)
    assert done is not None and done[1] is None and done[0].offer_id == "of-1"
    assert await store.ready_first("nobody", "", [b], "of-3", NOW, NOW + 20) is None
    still = await store.ticket("tk-b")
    assert still is not None and still.state == "waiting"


async def test_clerk_heads_reads_waiting_tickets_of_the_clerks_items_in_order(
        redis: aioredis.Redis) -> None:
    store = QueueStore(redis)
    tickets = [ticket(f"tk-{i}", at=NOW + i) for i in range(6)]
    for t in [*tickets, ticket("tk-b", item="B"), ticket("tk-c", item="C")]:
        await waiting(store, t)
    await clerk(store, skills=("A", "B"))
    await clerk(store, "c2")
    await store.set_status("c2", "ready", "", NOW)
    assert await store.reserve(tickets[0], "c2", "of-x", NOW, NOW + 20) == 1

    record, heads = await store.clerk_heads("c1", {"A": 0, "B": 0, "C": 0}, scan=3, want=2,
                                            only_if_free=False)
    assert record is not None and record.username == "c1"
    by_item = {h.item_code: h for h in heads}
    assert set(by_item) == {"A", "B"}  # not skilled for C
    assert [t.ticket_id for t in by_item["A"].waiting] == ["tk-1", "tk-2"]
    assert by_item["A"].more and by_item["A"].next_start == 3
    assert [t.ticket_id for t in by_item["B"].waiting] == ["tk-b"] and not by_item["B"].more

    _, page2 = await store.clerk_heads("c1", {"A": 3}, scan=3, want=2, only_if_free=False)
    assert [t.ticket_id for t in page2[0].waiting] == ["tk-3", "tk-4"]
    record, none = await store.clerk_heads("c1", {"A": 0}, scan=3, want=2, only_if_free=True)
    assert record is not None and none == []  # not ready: no heads read


async def test_queue_view_and_roster(redis: aioredis.Redis) -> None:
    store = QueueStore(redis)
    late, first = ticket("tk-late", at=NOW + 5), ticket("tk-first", at=NOW + 9, priority=True)
    for t in (late, first):
        await waiting(store, t)
    await clerk(store)
    await store.set_status("c1", "ready", "", NOW)
    assert await store.reserve(late, "c1", "of-1", NOW, NOW + 20) == 1
    assert await store.queue_view("A") == [("tk-first", "waiting"), ("tk-late", "offered")]
    await store.set_presence(keys.clerk_presence("c1"), "conn", 5.0)
    [entry] = await store.roster()
    assert (entry.username, entry.status, entry.skills, entry.present) == (
        "c1", "ready", frozenset({"A", "B"}), True)


def test_fanout_payloads_round_trip_with_and_without_origin() -> None:
    assert fanout.parse(fanout.payload("clerk:c1", '{"a":1}')) == ("", "clerk:c1", '{"a":1}')
    assert fanout.parse(fanout.payload("terminal:T", '{"b":2}', "node-a.1")) == (
        "node-a.1", "terminal:T", '{"b":2}')
    # As other processes publish it (approval, tests): no origin.
    assert fanout.parse("reviewer:r1\n{}") == ("", "reviewer:r1", "{}")
