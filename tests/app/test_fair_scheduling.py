"""Fair scheduling across fans: one number's burst holds a lock queue of bounded length, the
rest of its texts are stored and acknowledged at once, and every text is answered in order,
exactly once (issue 16, item 6). Structural, not timed: how many turns wait for the fan's lock."""

from __future__ import annotations

from .stack import fan, running_stack


async def test_a_burst_past_the_cap_is_acknowledged_without_queueing_for_the_fans_lock(
    database_url: str,
) -> None:
    async for stack in running_stack(database_url, reply_budget_s=0.05):
        runtime = stack.app.ctx.runtime
        cap = getattr(runtime.pipeline, "fan_in_flight", 4)  # the old code had no cap
        number = fan()
        await stack.text(number, "hi")
        await stack.text(number, "YES")
        bodies = [f"what about the show number {i}" for i in range(cap + 12)]
        async with runtime.locks.hold(number):  # the fan's running turn, still busy
            for body in bodies:  # one after the other: each acknowledged before the next
                answer = await stack.text(number, body)
                assert answer.status_code == 200  # stored, acknowledged, not yet answered
            # the cap's turns and one drain wait for the lock, not one turn per text
            assert runtime.locks.waiting(number) <= 1 + cap + 1
            stored = (await stack.inbound(number))[2:]
            assert [row.body for row in stored] == bodies
            assert {row.status for row in stored} == {"received"}  # none answered outside the lock
        await runtime.pipeline.drained()  # the burst's drain found nothing left, under the lock
        rows = await stack.inbound(number)
        assert [row.status for row in rows[2:]] == ["processed"] * len(bodies)
        firsts, by_api = [], 0
        for row in rows:
            replies = await stack.store.replies_to(row.id)
            assert replies, f"text {row.body!r} answered"
            firsts.append(min(q.outbox_id for q in replies))
            by_api += sum(q.status != "twiml" for q in replies)
        assert firsts == sorted(firsts)  # answered in the order they came
        sent = await stack.twilio.wait_accepted(by_api, to=number, timeout=60)
        await stack.app.ctx.sender.drain()
        assert len(sent) == len(stack.twilio.accepted(to=number)) == by_api  # each sent once
