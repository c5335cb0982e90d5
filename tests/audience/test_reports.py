"""Reports on a known history (tests/audience/report_rows.py), on SQLite and PostgreSQL: a
broadcast's sends, clicks, replies, opt-outs and hand-offs (and per variant), the line per day,
a flow's funnel, top topics; the CSV files and pictures `fanline report` writes."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.audience import report_charts, reports
from bot.cli import main
from bot.storage import Store
from bot.storage.broadcast_tables import broadcasts
from bot.storage.tables import messages
from tests.pipeline.test_pipeline import said, start, subscribed_fan, text

from .report_rows import NAME, write_history


def test_a_broadcast_reports_what_its_fans_did(store: Store) -> None:
    h = write_history(store)
    r = reports.line_report_sync(store.db, days=7, broadcast_id=h.broadcast_id)
    (b,) = r.broadcasts
    assert (b.id, b.name, b.window_h) == (h.broadcast_id, NAME, 24)
    f = b.total
    # 6 delivered, 2 failed and 1 awaiting a report were sent; the capped text never was
    assert (f.sent, f.delivered, f.failed, f.skipped, f.queued) == (9, 6, 2, 1, 0)
    assert f.failed_by_code == {"30005": 1, "30007": 1}
    # fans, not clicks: fan 1 clicked twice, fan 2 two links; fan 3's preview is no click
    assert f.clicks == 3 and f.ctr == pytest.approx(0.5)
    assert f.replies == 3 and f.reply_rate == pytest.approx(0.5)  # fans 1, 4 (twice), 6
    assert f.opt_outs == 1  # fan 5 within the day; fan 4 the day after does not count
    assert f.hand_offs == 1  # fan 6 after it; fan 1's hand-off the day before does not


def test_each_variant_has_its_own_figures(store: Store) -> None:
    h = write_history(store)
    (b,) = reports.line_report_sync(store.db, days=7, broadcast_id=h.broadcast_id).broadcasts
    a, bee = b.variants
    assert (a.label, a.winner, bee.label, bee.winner) == ("A", False, "B", True)
    assert (a.clicks, bee.clicks) == (2, 1)  # from each link's variant
    assert (a.sent, a.delivered, bee.sent, bee.delivered) == (5, 5, 4, 1)
    assert (a.replies, bee.replies) == (2, 1)
    assert (a.opt_outs, bee.opt_outs, a.hand_offs, bee.hand_offs) == (1, 0, 0, 1)
    assert bee.failed_by_code == {"30005": 1, "30007": 1} and bee.skipped == 1


def test_the_line_per_day_funnels_and_topics(store: Store) -> None:
    h = write_history(store)
    r = reports.line_report_sync(store.db, days=7)
    assert [b.id for b in r.broadcasts] == [h.broadcast_id]  # the period's broadcasts
    assert len(r.days) == 7 and r.days[-1].day == datetime.now(UTC).date()
    by_day = {d.day: d for d in r.days}
    sent = by_day[h.sent_at.date()]
    # that day: 4 texts in, 3 answered by the bot (fan 6's was held for a person), fan 6's
    # hand-off answered in 10 minutes, fan 5's opt-out
    assert (sent.texts_in, sent.answered_by_bot, sent.hand_offs) == (4, 3, 1)
    assert sent.first_answer_median_s == pytest.approx(600, abs=1)
    assert (sent.opt_ins, sent.opt_outs) == (0, 1)
    # ten fans opted in before the period; two opted out since: 8 now, 10 before
    assert r.days[0].list_size == 10 and r.days[-1].list_size == 8
    assert sent.list_size == 9
    (tour,) = r.funnels
    assert tour.flow == "tour"
    assert [(s.step, s.fans) for s in tour.steps] == [
        ("started", 3), ("ask_city", 2), ("show_dates", 1)
    ]  # fmt: skip
    assert [(t.label, t.size) for t in r.topics] == [("denver show tonight", 5),
                                                     ("refund my tickets", 2)]  # fmt: skip


def test_an_empty_line_reports_zeros(store: Store) -> None:
    r = reports.line_report_sync(store.db, days=3)
    assert [d.texts_in for d in r.days] == [0, 0, 0]
    assert (r.broadcasts, r.funnels, r.topics) == ((), (), ())
    # charts of nothing still draw (axes, titles), and say so
    drawn = {stem: make() for stem, _, make in report_charts.charts(r)}
    assert list(drawn) == ["texts-per-day", "list", "first-answer"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_fanline_report_writes_csv_and_png(
    store: Store,
    database_url: str,
    tmp_path: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = write_history(store)
    out = tmp_path / "out"  # type: ignore[operator]
    monkeypatch.setenv("FANLINE_DATABASE_URL", database_url)
    assert main(["report", "--days", "7", "--out", str(out)]) == 0
    with (out / "broadcasts.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    total = next(r for r in rows if r["variant"] == "all")
    assert (total["broadcast"], total["sent"], total["clicks"], total["ctr_pct"]) == (
        str(h.broadcast_id), "9", "3", "50.0"
    )  # fmt: skip
    assert total["failed_by_code"] == "30005:1 30007:1"
    with (out / "funnels.csv").open() as fh:
        assert [r["fans"] for r in csv.DictReader(fh)] == ["3", "2", "1"]
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert f"broadcast-{h.broadcast_id}.png" in pngs and "texts-per-day.png" in pngs
    assert all((out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_pictures_keep_names_as_text(store: Store) -> None:
    """The inbox inlines the SVG: a broadcast's name is escaped text, never markup or math."""
    h = write_history(store)
    (b,) = reports.line_report_sync(store.db, days=7, broadcast_id=h.broadcast_id).broadcasts
    svg = report_charts.inline_svg(report_charts.broadcast_chart(b), "b1")
    assert svg.startswith("<svg") and "<b>" not in svg and "style=" not in svg
    assert "Presale $5 &lt;b&gt;" in svg
    assert "CTR 50.0 %" in svg  # the numbers on the bars are text the page can show


async def test_a_stop_is_no_reply_and_an_opted_out_fans_text_is_not_answered(
    database_url: str,
) -> None:
    """Through the pipeline: fan 1's STOP to a broadcast is an opt-out, not a reply; fan 2's
    text is a reply; fan 1's text after the STOP is stored `ignored`, never answered by the bot."""
    rt = await start(database_url)
    try:
        one, two = await subscribed_fan(rt), await subscribed_fan(rt)
        ids = [(await rt.store.contact_by_phone(n)).id for n in (one, two)]  # type: ignore[union-attr]
        t0 = datetime.now(UTC) - timedelta(minutes=5)

        def broadcast(conn: sa.Connection) -> int:
            bid = conn.execute(broadcasts.insert().values(
                name="b", body="News", segment={}, status="completed", rate=1.0, created_at=t0,
                started_at=t0, finished_at=t0).returning(broadcasts.c.id)).scalar_one()  # fmt: skip
            for cid, phone in zip(ids, (one, two), strict=True):
                conn.execute(messages.insert().values(
                    contact_id=cid, direction="out", to_number=phone, body="News",
                    kind="broadcast", status="delivered", broadcast_id=bid, created_at=t0,
                    sent_at=t0))  # fmt: skip
            return bid

        bid = await rt.store.db.run(broadcast)
        assert "utter_opt_out_confirmed" in said(await rt.handle(text(one, "STOP")))
        await rt.handle(text(two, "love it, when is the tour?"))
        (b,) = reports.line_report_sync(rt.store.db, days=1, broadcast_id=bid).broadcasts
        assert (b.total.replies, b.total.opt_outs) == (1, 1)
        ignored = await rt.handle(text(one, "wait, when is the tour?"))
        assert ignored.replies == ()
        report = reports.line_report_sync(rt.store.db, days=1)
        stored = await rt.store.db.run(lambda c: c.execute(
            sa.select(messages.c.status).where(messages.c.id == ignored.message_id)).scalar())  # fmt: skip
        assert stored == "ignored"
        today = report.days[-1]
        answered = await rt.store.db.run(lambda c: c.execute(
            sa.select(sa.func.count()).where(
                messages.c.direction == "in", messages.c.status == "processed",
                messages.c.escalation_id.is_(None)
            )).scalar())  # fmt: skip
        assert today.answered_by_bot == answered  # fan 1's last text is not among them
    finally:
        await rt.close()
