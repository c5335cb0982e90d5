"""The reports' pictures: matplotlib figures (Agg, no pyplot) as PNG for `fanline report` and
as SVG with real text for the inbox page. The one reports module importing matplotlib, and only
when a chart is drawn: `fanline --help` and the server's start-up never load it.

Each chart says what it counts in its title and axis labels, with the number on every bar:
a content editor reads it without a legend hunt.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

from bot.audience.report_model import BroadcastReport, Funnel, LineReport

BLUE, GREEN, ORANGE, RED, GREY, PURPLE = (
    "#2f6db5", "#2e9e5b", "#e08a1e", "#c8413b", "#8a8f98", "#7a4fb5",
)  # fmt: skip
_SAVING = threading.Lock()
_XML_HEAD = re.compile(r"\A.*?(?=<svg)", re.S)
_STYLE_ELEMENT = re.compile(r"<style[^>]*>.*?</style>", re.S)
_STYLE_ATTR = re.compile(r'style="([^"]*)"')
_PROPERTY = re.compile(r"[a-z-]{1,24}")
_ID = re.compile(r'id="([A-Za-z0-9_]+)"')


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def render(fig: Any, fmt: str) -> bytes:
    """PNG bytes, or an SVG document with its text kept as text (readable, searchable)."""
    import matplotlib

    buf = io.BytesIO()
    # rc_context changes matplotlib's global settings: one drawing at a time (pages draw on threads)
    with _SAVING, matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "fanline"}):
        fig.savefig(buf, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    return buf.getvalue()


def inline_svg(fig: Any, prefix: str) -> str:
    """An <svg> element for an HTML page whose CSP forbids inline styles: matplotlib's `style`
    attributes become SVG presentation attributes (which CSP leaves alone), and its ids get
    the chart's prefix so several charts on one page never share one."""
    svg = _XML_HEAD.sub("", render(fig, "svg").decode("utf-8"), count=1)
    svg = _STYLE_ELEMENT.sub("", svg)
    svg = _STYLE_ATTR.sub(lambda m: _attributes(m.group(1)), svg)
    svg = svg.replace("<svg ", '<svg stroke-linejoin="round" stroke-linecap="butt" ', 1)
    ids = _ID.findall(svg)
    if ids:
        named = re.compile(r'(id="|#)(' + "|".join(map(re.escape, ids)) + r')(?=["\)])')
        svg = named.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg)
    return svg


def _attributes(style: str) -> str:
    pairs = (part.split(":", 1) for part in style.split(";") if ":" in part)
    return " ".join(
        f'{k.strip()}="{v.strip()}"' for k, v in pairs if _PROPERTY.fullmatch(k.strip())
    )


def _clean(label: str, width: int = 38) -> str:
    """Fans' words and flow names as plain text: no mathtext, not too long for an axis."""
    label = " ".join(label.split())
    return label if len(label) <= width else label[: width - 1] + "…"


def _bars(ax: Any, names: list[str], values: list[float], colors: Any, texts: list[str]) -> None:
    """Horizontal bars, top to bottom, each with its number at its end."""
    ys = list(range(len(names)))[::-1]
    bars = ax.barh(ys, values, color=colors)
    ax.set_yticks(ys, [_clean(n) for n in names])
    for t in ax.get_yticklabels():
        t.set_parse_math(False)
    ax.bar_label(bars, labels=texts, padding=3, fontsize=9)
    ax.set_xlim(0, max(values + [1]) * 1.25)
    _whole_numbers(ax.xaxis)
    ax.spines[["top", "right"]].set_visible(False)


def broadcast_chart(b: BroadcastReport) -> Any:
    f = b.total
    rows = [
        ("Sent", f.sent, BLUE, ""),
        ("Delivered", f.delivered, BLUE, ""),
        ("Clicked a link", f.clicks, GREEN, f"CTR {_rate(f.clicks, f.reached)}"),
        ("Replied", f.replies, GREEN, f"{_rate(f.replies, f.reached)}"),
        ("Handed to a person", f.hand_offs, ORANGE, ""),
        ("Opted out", f.opt_outs, RED, f"{_rate(f.opt_outs, f.reached)}"),
        ("Failed", f.failed, RED, ""),
        ("Skipped (frequency cap)", f.skipped, GREY, ""),
    ]
    fig = _figure(7.5, 3.6)
    ax = fig.add_subplot()
    _bars(ax, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
          [f"{r[1]:,}" + (f"  ({r[3]})" if r[3] else "") for r in rows])  # fmt: skip
    ax.set_title(f"Broadcast “{_clean(b.name, 40)}”: texts, and fans within {b.window_h} h",
                 loc="left", fontsize=11).set_parse_math(False)  # fmt: skip
    ax.set_xlabel("texts (sent, delivered, failed, skipped) · fans (the rest)")
    return fig


def variants_chart(b: BroadcastReport) -> Any:
    """Click-through and reply rate side by side for each variant, the winner marked."""
    fig = _figure(7.5, 3.0)
    ax = fig.add_subplot()
    names = [f"Variant {v.label}" + (" (winner)" if v.winner else "") for v in b.variants]
    xs = range(len(names))
    width = 0.38
    ctr = [100 * v.ctr for v in b.variants]
    replies = [100 * v.reply_rate for v in b.variants]
    a = ax.bar([x - width / 2 for x in xs], ctr, width, color=GREEN, label="click-through")
    r = ax.bar([x + width / 2 for x in xs], replies, width, color=BLUE, label="reply rate")
    ax.bar_label(a, labels=[f"{v:.1f} %" for v in ctr], padding=2, fontsize=9)
    ax.bar_label(r, labels=[f"{v:.1f} %" for v in replies], padding=2, fontsize=9)
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("% of texts delivered")
    ax.set_ylim(0, max(ctr + replies + [1]) * 1.45)  # room for the legend above the bars
    ax.legend(loc="upper right", frameon=False, ncols=2)
    ax.set_title(f"A/B: “{_clean(b.name, 40)}”, variant by variant", loc="left",
                 fontsize=11).set_parse_math(False)  # fmt: skip
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _rate(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f} %" if whole else "-"


def _whole_numbers(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))


def _day_axis(ax: Any, report: LineReport, counts: bool = True) -> list[Any]:
    import matplotlib.dates as mdates

    ax.set_xlabel("day (UTC)")
    ax.spines[["top", "right"]].set_visible(False)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    if counts:
        _whole_numbers(ax.yaxis)
    return [d.day for d in report.days]


def activity_chart(report: LineReport) -> Any:
    fig = _figure(7.5, 3.2)
    ax = fig.add_subplot()
    days = _day_axis(ax, report)
    ax.bar(days, [d.texts_in for d in report.days], color="#c9d9ee", label="texts in")
    ax.plot(days, [d.answered_by_bot for d in report.days], color=BLUE, marker=".",
            label="answered by the bot")  # fmt: skip
    ax.plot(days, [d.hand_offs for d in report.days], color=ORANGE, marker=".",
            label="handed to a person")  # fmt: skip
    total_in = sum(d.texts_in for d in report.days)
    by_bot = sum(d.answered_by_bot for d in report.days)
    ax.set_title(f"Fans' texts per day: {total_in:,} in, {_rate(by_bot, total_in)} answered "
                 "by the bot", loc="left", fontsize=11)  # fmt: skip
    ax.set_ylabel("texts per day")
    ax.legend(loc="upper left", frameon=False, fontsize=8)
    return fig


def audience_chart(report: LineReport) -> Any:
    fig = _figure(7.5, 3.2)
    ax = fig.add_subplot()
    days = _day_axis(ax, report)
    ins = [d.opt_ins for d in report.days]
    outs = [-d.opt_outs for d in report.days]
    ax.bar(days, ins, color=GREEN, label="opt-ins")
    ax.bar(days, outs, color=RED, label="opt-outs")
    ax.axhline(0, color=GREY, linewidth=0.8)
    ax.set_ylabel("fans per day (opt-outs below 0)")
    size = ax.twinx()
    size.plot(days, [d.list_size for d in report.days], color=PURPLE, linewidth=2,
              label="list size")  # fmt: skip
    size.set_ylabel("subscribed fans", color=PURPLE)
    _whole_numbers(size.yaxis)
    size.spines[["top"]].set_visible(False)
    last = report.days[-1].list_size if report.days else 0
    ax.set_title(f"The list: +{sum(ins):,} opt-ins, {-sum(outs):,} opt-outs, {last:,} fans now",
                 loc="left", fontsize=11)  # fmt: skip
    ax.legend(loc="upper left", frameon=False, fontsize=8)
    return fig


def response_chart(report: LineReport) -> Any:
    fig = _figure(7.5, 2.8)
    ax = fig.add_subplot()
    days = _day_axis(ax, report, counts=False)
    minutes = [None if d.first_answer_median_s is None else d.first_answer_median_s / 60
               for d in report.days]  # fmt: skip
    bars = ax.bar(days, [m or 0 for m in minutes], color=ORANGE)
    ax.bar_label(bars, labels=["" if m is None else f"{m:.0f}" for m in minutes], fontsize=7,
                 padding=1)  # fmt: skip
    ax.set_ylabel("minutes (median)")
    ax.set_title("Time to a person's first answer after a hand-off", loc="left", fontsize=11)
    return fig


def funnel_chart(funnel: Funnel) -> Any:
    steps = funnel.steps
    fig = _figure(7.5, 0.9 + 0.32 * len(steps))
    ax = fig.add_subplot()
    _bars(ax, [s.step for s in steps], [s.fans for s in steps],
          [BLUE] + [GREEN] * (len(steps) - 1),
          [f"{s.fans:,} ({_rate(s.fans, funnel.started)})" for s in steps])  # fmt: skip
    ax.set_title(f"Flow “{_clean(funnel.flow)}”: fans who reached each step", loc="left",
                 fontsize=11).set_parse_math(False)  # fmt: skip
    ax.set_xlabel("fans (share of those who started)")
    return fig


def topics_chart(report: LineReport) -> Any:
    items = report.topics
    fig = _figure(7.5, 0.9 + 0.32 * max(len(items), 1))
    ax = fig.add_subplot()
    _bars(ax, [t.label for t in items], [t.size for t in items], ORANGE,
          [f"{t.size:,}" for t in items])  # fmt: skip
    ax.set_title("Top topics: fans' questions that reached a person", loc="left", fontsize=11)
    ax.set_xlabel("texts")
    return fig


def charts(report: LineReport) -> Iterator[tuple[str, str, Callable[[], Any]]]:
    """(file stem, title, figure maker) for every chart of a report, in page order."""
    for b in report.broadcasts:
        yield f"broadcast-{b.id}", f"Broadcast {b.name}", lambda b=b: broadcast_chart(b)
        if b.variants:
            yield f"broadcast-{b.id}-variants", "Variants", lambda b=b: variants_chart(b)
    if report.days:
        yield "texts-per-day", "Texts", lambda: activity_chart(report)
        yield "list", "The list", lambda: audience_chart(report)
        yield "first-answer", "First answer", lambda: response_chart(report)
    for i, f in enumerate(report.funnels):
        yield f"funnel-{i + 1}", f"Flow {f.flow}", lambda f=f: funnel_chart(f)
    if report.topics:
        yield "topics", "Top topics", lambda: topics_chart(report)


def svgs(report: LineReport) -> dict[str, str]:
    """Every chart as an <svg> element for a page, by its stem (broadcast-1, texts-per-day,
    funnel-2...); the inbox runs this in a child process (`chart_pool`)."""
    return {stem: inline_svg(make(), stem) for stem, _title, make in charts(report)}
