"""Shared look of mailsim figures: colours, fonts, how simulated time is written, figure making.

Every figure module draws on a bare :class:`matplotlib.figure.Figure` with an Agg canvas, never on
pyplot's global state, so plotting works the same headless (``mailsim run``, CI), in a notebook and
from several threads of a sweep. Time is shown the way a person reads it: the unit of an axis is
chosen from the span it covers (s, min, h, d), and log axes get ticks at 1 s, 1 min, 1 h, 1 d.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


class PlotError(ValueError):
    """A figure cannot be drawn as asked (unknown connection, empty window, missing ffmpeg...).

    The message says what was found and what would work, so the CLI can print it as one line.
    """


# --- colours ------------------------------------------------------------------------------------

#: Protocol line colours in the sequence diagram and the animation.
SMTP_COLOUR = "#1f5fa8"
POP3_COLOUR = "#1b8a3a"
TCP_COLOUR = "#7f7f7f"
HTTP_COLOUR = "#8c3fa8"
ERROR_COLOUR = "#d62728"
#: Line styles telling SMTP and POP3 apart in print and for colour-blind readers.
SMTP_STYLE: Any = "-"
POP3_STYLE: Any = (0, (5, 2))
TCP_STYLE: Any = ":"
HTTP_STYLE: Any = (0, (7, 2, 1.5, 2))

#: Background colours of sites (lanes and topology bands), by order of the site.
SITE_COLOURS = ("#fdebd3", "#dbe9f6", "#e5f2dd", "#f1e2f0", "#f6f1d5", "#e2e2e2")

#: Node colours in the topology by kind.
KIND_COLOURS = {
    "host": "#9ecae1",
    "mailserver": "#fdae6b",
    "router": "#bdbdbd",
    "dns": "#c7b9e0",
}

#: Outage shading by what went down.
OUTAGE_COLOURS = {"link": "#ff7f0e", "node": "#555555", "service": "#9467bd"}

#: Final status colours of a (message, recipient).
STATUS_COLOURS = {
    "delivered": "#2ca02c",
    "bounced": ERROR_COLOUR,
    "rejected": "#8c1515",
    "lost": "#000000",
    "queued": "#7f7f7f",
}

#: Base font sizes (points) of the default look: legible when a 10 in wide figure fills a page.
FONT = 9.0
SMALL_FONT = 7.5


# --- figure sizes -------------------------------------------------------------------------------

#: The inches of a slide figure: 16:9, saved at :attr:`Look.dpi` 120 it is 1920 x 1080 pixels.
SLIDE_INCHES = (16.0, 9.0)
#: The smallest type on a slide, points: 20 px at 1920 x 1080, legible from the back of a room.
SLIDE_MIN_FONT = 12.0


@dataclass(frozen=True)
class Look:
    """How large a figure, its type and its lines are: the ``size`` argument of every figure.

    ``"default"`` sizes each figure to its content (a long sequence chart is tall) with type for
    reading on a screen or on paper. ``"slide"`` is a landscape 16:9 figure (:data:`SLIDE_INCHES`)
    for a projector: type and lines :attr:`scale` times larger (the smallest label is 12 pt,
    20 pixels at 1920 x 1080), and the figure chooses what fits rather than growing.
    """

    name: str
    scale: float
    slide: bool
    #: The resolution ``render_all`` saves with.
    dpi: float

    @property
    def font(self) -> float:
        """Labels and axis titles, points."""
        return FONT * self.scale

    @property
    def small(self) -> float:
        """Annotations and tick labels, points."""
        return SMALL_FONT * self.scale

    @property
    def title(self) -> float:
        """Figure titles, points."""
        return (FONT + 1) * self.scale

    def line(self, width: float) -> float:
        """A line ``width`` points wide in the default look, in this one."""
        return width * self.scale


LOOKS = {
    "default": Look("default", 1.0, slide=False, dpi=110.0),
    "slide": Look("slide", 1.5, slide=True, dpi=120.0),
}


def look_for(size: str | Look) -> Look:
    """The :class:`Look` called ``size`` ("default" or "slide").

    Raises:
        PlotError: any other name.
    """
    if isinstance(size, Look):
        return size
    look = LOOKS.get(size) if isinstance(size, str) else None
    if look is None:
        raise PlotError(f"size must be 'default' or 'slide', got {size!r}")
    return look


# --- time -------------------------------------------------------------------------------------

#: Time units for axes, (name, seconds).
TIME_UNITS: tuple[tuple[str, float], ...] = (
    ("s", 1.0),
    ("min", 60.0),
    ("h", 3600.0),
    ("d", 86400.0),
)


def time_unit(span: float) -> tuple[str, float]:
    """The unit an axis covering ``span`` seconds should use: ``("min", 60.0)`` and so on.

    Up to 2 minutes in seconds, up to 3 hours in minutes, up to 3 days in hours, then days: the
    numbers on the axis then stay between about 1 and 180.
    """
    if span < 120:
        return TIME_UNITS[0]
    if span < 3 * 3600:
        return TIME_UNITS[1]
    if span < 3 * 86400:
        return TIME_UNITS[2]
    return TIME_UNITS[3]


def human_duration(seconds: float) -> str:
    """A duration as people say it, in two units at most: ``84 ms``, ``35 min 12 s``, ``5 d 2 h``.

    Used for gap labels and outage lengths on figures.
    """
    seconds = abs(seconds)
    if round(seconds * 1000) < 1000:  # 0.9996 s is "1 s", not "1000 ms"
        return f"{seconds * 1000:.0f} ms"
    if float(f"{seconds:.3g}") < 60:  # 59.96 s is "1 min", not "60 s"
        return f"{seconds:.3g} s"
    parts: list[str] = []
    remaining = round(seconds)
    for name, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count or parts:
            parts.append(f"{count} {name}")
        if len(parts) == 2:
            break
    if len(parts) == 2 and parts[1].startswith("0 "):
        parts.pop()
    return " ".join(parts)


#: Ticks for log-time axes: (seconds, label).
LOG_TICKS: tuple[tuple[float, str], ...] = (
    (0.001, "1 ms"),
    (0.01, "10 ms"),
    (0.1, "100 ms"),
    (1.0, "1 s"),
    (10.0, "10 s"),
    (60.0, "1 min"),
    (600.0, "10 min"),
    (3600.0, "1 h"),
    (6 * 3600.0, "6 h"),
    (86400.0, "1 d"),
    (2 * 86400.0, "2 d"),
    (4 * 86400.0, "4 d"),
    (7 * 86400.0, "7 d"),
    (14 * 86400.0, "14 d"),
    (30 * 86400.0, "30 d"),
)


def set_log_time_axis(ax: Axes, lo: float, hi: float, *, axis: str = "x") -> None:
    """Make ``axis`` of ``ax`` a log time axis in seconds with human tick labels (1 s, 1 h, 1 d).

    ``lo`` and ``hi`` are the positive data limits in seconds.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lo = max(lo, 1e-3)
    hi = max(hi, lo * 10)
    ticks = [s for s, _ in LOG_TICKS if lo / 1.5 <= s <= hi * 1.5]
    labels = dict(LOG_TICKS)
    target = ax.xaxis if axis == "x" else ax.yaxis
    if axis == "x":
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
    else:
        ax.set_yscale("log")
        ax.set_ylim(lo, hi)
    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(FuncFormatter(lambda v, _pos: labels.get(v, human_duration(v))))
    target.set_minor_locator(NullLocator())


def clock(seconds: float) -> str:
    """Simulated time as the transcript writes it, ``[Nd ]HH:MM:SS.mmm``."""
    from mailsim.trace.clock import format_time

    return format_time(seconds)


# --- figures ------------------------------------------------------------------------------------


def new_figure(width: float, height: float, *, dpi: float = 100.0) -> Figure:
    """A pyplot-free figure of ``width`` x ``height`` inches with an Agg canvas attached.

    Agg renders without a display, so this works on servers and in tests; a notebook shows the
    returned figure through IPython's display hook like any other.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Agg cannot render more than 2**16 pixels along a side; keep well inside that.
    width = min(width, 60000 / dpi)
    height = min(height, 60000 / dpi)
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def empty_note(ax: Axes, text: str) -> None:
    """Write ``text`` in the middle of an empty ``ax``: nothing to draw is not an error."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])


def short_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, for labels."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
