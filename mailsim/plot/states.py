"""State diagrams of the protocol machines, drawn from their transition tables.

The SMTP and POP3 machines keep every rule in one table shaped ``{state: {trigger: new_state}}``
(CONVENTIONS.md, after h11's ``_state.py``); :func:`state_diagram` draws any such table, so the
figure students see is the very table the code runs.

Layout: the first state of the table is the start. States are placed in columns by the longest
path from the start once the edges that go back (found by a depth-first search) are set aside,
so the normal flow reads left to right. Dead ends that several states lead to (CLOSED, ERROR),
and funnels that lead only to them (an SMTP client's QUIT_SENT), sit in a row below. A rule that
most states share (``"peer closed" -> CLOSED`` from every state) is drawn once, from a dashed
"any state" box, instead of once per state. Forward edges between neighbouring columns are
straight, edges that skip columns or go back are arcs (back edges below the flow line, skips
above), triggers of the same edge are joined into one label placed where it covers no state and
no other label if it can, and a state's self-loops ("NOOP, RSET, VRFY") are a loop above it.
"""

from __future__ import annotations

import itertools
import math
import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mailsim.plot._style import (
    FONT,
    SLIDE_INCHES,
    SMALL_FONT,
    PlotError,
    look_for,
    new_figure,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def state_name(state: Any) -> str:
    """How a state is written on the diagram: an Enum member's name, else ``str(state)``."""
    name = getattr(state, "name", None)
    return str(name) if name is not None else str(state)


def _triggers_text(triggers: list[str], width: int = 18) -> str:
    text = ", ".join(str(t) for t in triggers)
    return "\n".join(textwrap.wrap(text, width=width, break_long_words=False)) or text


#: Stands for "every state" in a diagram: the source of transitions that most states share.
ANY_STATE = object()


def _everywhere(transitions: Mapping[Any, Mapping[str, Any]]) -> set[tuple[str, Any]]:
    """The (trigger, target) rules shared by most states, drawn once from an "any state" box.

    A rule counts when at least 3 states, and at least 60% of the states that lead anywhere,
    have it (``"peer closed" -> CLOSED``, ``"local error" -> ERROR``); drawing it from each of
    them would bury the diagram under identical arrows.
    """
    active = [s for s, row in transitions.items() if any(t != s for t in row.values())]
    holders: dict[tuple[str, Any], int] = {}
    for source, row in transitions.items():
        for trigger, target in row.items():
            if target != source:
                holders[(trigger, target)] = holders.get((trigger, target), 0) + 1
    needed = max(3, math.ceil(0.6 * len(active)))
    return {rule for rule, count in holders.items() if count >= needed}


def _layers(
    states: list[Any], edges: dict[tuple[Any, Any], list[str]]
) -> tuple[dict[Any, int], set[tuple[Any, Any]]]:
    """Column of each main-flow state, and the set of back edges."""
    successors: dict[Any, list[Any]] = {s: [] for s in states}
    for a, b in edges:
        if a != b:
            successors[a].append(b)
    back: set[tuple[Any, Any]] = set()
    colour: dict[Any, int] = {}  # 0 unseen, 1 on the stack, 2 done

    def visit(root: Any) -> None:
        stack: list[tuple[Any, int]] = [(root, 0)]
        colour[root] = 1
        while stack:
            node, index = stack[-1]
            if index < len(successors[node]):
                stack[-1] = (node, index + 1)
                nxt = successors[node][index]
                state = colour.get(nxt, 0)
                if state == 1:
                    back.add((node, nxt))
                elif state == 0:
                    colour[nxt] = 1
                    stack.append((nxt, 0))
            else:
                colour[node] = 2
                stack.pop()

    for state in states:
        if colour.get(state, 0) == 0:
            visit(state)
    # Longest path from the roots over the forward edges (a DAG now), in topological order.
    layer = dict.fromkeys(states, 0)
    indegree = dict.fromkeys(states, 0)
    forward = [(a, b) for (a, b) in edges if a != b and (a, b) not in back]
    for _, b in forward:
        indegree[b] += 1
    ready = [s for s in states if indegree[s] == 0]
    while ready:
        node = ready.pop(0)
        for a, b in forward:
            if a == node:
                layer[b] = max(layer[b], layer[a] + 1)
                indegree[b] -= 1
                if indegree[b] == 0:
                    ready.append(b)
    return layer, back


def state_diagram(
    transitions: Mapping[Any, Mapping[str, Any]],
    *,
    title: str,
    ax: Any = None,
    size: str = "default",
) -> Figure:
    """Draw a protocol machine's transition table as a state diagram.

    Args:
        transitions: ``{state: {trigger: new_state}}``; states may be Enum members (drawn by
            name) or any hashable; triggers are strings such as ``"EHLO"`` or ``"250"``. The
            first state is the start state.
        title: the figure title, e.g. ``"SMTP server (RFC 5321)"``.
        ax: draw into this axes instead of a new figure.
        size: "default" (sized to the diagram) or "slide": 16:9, the whole diagram, its type and
            its lines zoomed together to fill the slide, so the layout stays as it is.

    Returns:
        The figure. Each state is an Ellipse patch with gid ``state:<name>``; each (from, to) pair
        of states is one FancyArrowPatch with gid ``transition`` (a self-loop has gid
        ``self-loop``) labelled with all its triggers.

    Raises:
        PlotError: the table is empty.
    """
    from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch

    states: list[Any] = []
    for source, row in transitions.items():
        for state in (source, *row.values()):
            if state not in states:
                states.append(state)
    if not states:
        raise PlotError(f"the transition table for {title!r} is empty: nothing to draw")
    everywhere = _everywhere(transitions)
    edges: dict[tuple[Any, Any], list[str]] = {}
    from_any: dict[Any, list[str]] = {}
    for source, row in transitions.items():
        for trigger, target in row.items():
            if (trigger, target) in everywhere and source != target:
                if trigger not in from_any.setdefault(target, []):
                    from_any[target].append(str(trigger))
                continue
            edges.setdefault((source, target), []).append(str(trigger))
    layer, back = _layers(states, edges)
    out_degree = {s: sum(1 for (a, b) in edges if a == s and b != s) for s in states}
    in_from = {s: {a for (a, b) in edges if b == s and a != s} for s in states}
    # Dead ends reached from several states (CLOSED, ERROR, UPDATE) go to a row below.
    sinks = [
        s
        for s in states
        if out_degree[s] == 0 and (len(in_from[s]) >= 2 or s in from_any) and s != states[0]
    ]
    # So do funnels into them: states many others lead to that lead only to dead ends
    # (QUIT_SENT -> CLOSED in an SMTP client).
    grew = True
    while grew:
        grew = False
        for state in states:
            successors = {b for (a, b) in edges if a == state and b != state}
            if (
                state not in sinks
                and state != states[0]
                and len(in_from[state]) >= 3
                and successors
                and successors <= set(sinks)
            ):
                sinks.append(state)
                grew = True
    main = [s for s in states if s not in sinks]
    columns = sorted({layer[s] for s in main})
    column_of = {s: columns.index(layer[s]) for s in main}
    widths = {s: max(1.5, 0.16 * len(state_name(s)) + 0.5) for s in states}
    dx = max(widths.values()) + 1.5
    dy = 2.0
    # Columns are as wide as their widest state, plus room for a label between them.
    column_width = [
        max(widths[s] for s in main if column_of[s] == column) for column in range(len(columns))
    ]
    column_x = [0.0]
    for left, right in itertools.pairwise(column_width):
        column_x.append(column_x[-1] + (left + right) / 2 + 1.6)
    positions: dict[Any, tuple[float, float]] = {}
    for column in range(len(columns)):
        members = [s for s in main if column_of[s] == column]
        for index, state in enumerate(members):
            positions[state] = (column_x[column], -(index - (len(members) - 1) / 2) * dy)
    # How each edge bends (arc3's rad) and where its label goes; back edges bend below the flow
    # line, so the row of dead ends must start below the deepest of them.
    pairs = set(edges)
    deepest_back = 0.0
    for a, b in edges:
        if (a, b) in back and a in positions and b in positions:
            deepest_back = max(deepest_back, 0.5 * 0.35 * abs(positions[a][0] - positions[b][0]))
    lowest = min(y for _, y in positions.values())
    row_y = lowest - deepest_back - 2.4
    if sinks:
        wanted = []
        middle = sum(column_x) / len(column_x)
        for state in sinks:
            xs = [positions[a][0] for a in in_from[state] if a in positions]
            wanted.append((sum(xs) / len(xs) if xs else middle, state))
        wanted.sort(key=lambda w: w[0])
        placed: list[float] = []
        for x, state in wanted:
            if placed and x < placed[-1] + dx:
                x = placed[-1] + dx
            placed.append(x)
            positions[state] = (x, row_y)
    if from_any:
        # The "from any state" box sits under the states its rules lead to.
        targets_x = [positions[t][0] for t in from_any]
        x_any = sum(targets_x) / len(targets_x)
        y_any = min(positions[t][1] for t in from_any) - 2.0
        positions[ANY_STATE] = (x_any, y_any)
    # Inches per data unit: as large as reads well, smaller for big machines so the figure
    # stays under about 16 inches wide.
    xs = [p[0] for p in positions.values()]
    scale = min(0.8, max(0.6, 15.0 / (max(xs) - min(xs) + dx)))
    char_width, line_height = 0.058 / scale, 0.13 / scale  # a 7.5 pt label, in data units
    boxes = [(x, y, widths.get(state, 1.6) / 2, 0.4) for state, (x, y) in positions.items()]
    labels_placed: list[tuple[float, float, float, float]] = []

    def label_box(x: float, y: float, text: str) -> tuple[float, float, float, float]:
        lines = text.splitlines() or [text]
        return (
            x,
            y,
            char_width * max(len(line) for line in lines) / 2 + 0.05,
            line_height * len(lines) / 2 + 0.03,
        )

    def clear(box: tuple[float, float, float, float]) -> bool:
        x, y, w, h = box
        return not any(
            abs(x - ox) < w + ow and abs(y - oy) < h + oh
            for ox, oy, ow, oh in boxes + labels_placed
        )

    geometry: list[tuple[Any, Any, float, float, float, str]] = []
    ordered = sorted(edges.items(), key=lambda item: item[0][0] != item[0][1])  # loops first
    ordered += [((ANY_STATE, target), triggers) for target, triggers in from_any.items()]
    for (a, b), triggers in ordered:
        label = _triggers_text(triggers)
        (xa, ya), (xb, yb) = positions[a], positions[b]
        if a == b:
            # Above the loop, whose top is half of rad * chord (1.4 * 0.6) over the ellipse.
            lx, ly = xa, ya + 0.375 + 0.42 + 0.04
            box = label_box(lx, ly, label)
            labels_placed.append((lx, ly + box[3], box[2], box[3]))
            geometry.append((a, b, 0.0, lx, ly, label))
            continue
        # arc3 puts its control point at (mid.x + rad * dy, mid.y - rad * dx): with rad of the
        # sign of dx the arc bends below the chord, with the opposite sign above.
        direction = 1.0 if xb >= xa else -1.0
        length = math.hypot(xb - xa, yb - ya)
        if b in sinks or a is ANY_STATE:
            rad = 0.0
        elif (a, b) in back:
            rad = 0.35 * direction  # back edges below the flow line
        elif (b, a) in pairs:
            rad = 0.15  # a pair of opposite edges: bend both a little, to either side
        elif abs(column_of.get(b, 0) - column_of.get(a, 0)) > 1 and math.isclose(ya, yb):
            # Skips a column on the same row: a flat arc above, at most 1.2 units high.
            rad = -min(0.3, 2.4 / length) * direction
        else:
            rad = 0.0
        # The label goes on the curve (a quadratic Bezier from A over the control point C to B,
        # as matplotlib's ConnectionStyle.Arc3 draws it), at the first of a few places along it
        # that covers no state and no other label; failing that, in the middle.
        cx, cy = (xa + xb) / 2 + rad * (yb - ya), (ya + yb) / 2 - rad * (xb - xa)
        chosen = None
        for t in (0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78):
            lx = (1 - t) ** 2 * xa + 2 * (1 - t) * t * cx + t**2 * xb
            ly = (1 - t) ** 2 * ya + 2 * (1 - t) * t * cy + t**2 * yb
            box = label_box(lx, ly, label)
            if clear(box):
                chosen = box
                break
        if chosen is None:
            lx = 0.25 * xa + 0.5 * cx + 0.25 * xb
            ly = 0.25 * ya + 0.5 * cy + 0.25 * yb
            chosen = label_box(lx, ly, label)
        labels_placed.append(chosen)
        geometry.append((a, b, rad, chosen[0], chosen[1], label))
    xs = [p[0] for p in positions.values()] + [g[3] for g in geometry]
    ys = [p[1] for p in positions.values()] + [g[4] for g in geometry]
    x_lo, x_hi = min(xs) - dx / 2, max(xs) + dx / 2
    y_lo, y_hi = min(ys) - 0.8, max(ys) + 0.8
    zoom = 1.0
    if ax is None:
        width, height = (x_hi - x_lo) * scale, (y_hi - y_lo) * scale + 0.45
        if look_for(size).slide:
            # Labels were placed for the default type size: zoom type and lines with the picture.
            zoom = min(SLIDE_INCHES[0] / width, SLIDE_INCHES[1] / height)
            width, height = SLIDE_INCHES
        fig = new_figure(width, height)
        ax = fig.add_axes((0.01, 0.0, 0.98, 1 - 0.45 * zoom / height))
    else:
        fig = ax.get_figure()
    ax.set_title(title, fontsize=(FONT + 2) * zoom, loc="left")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_aspect("equal")
    ax.axis("off")
    patches: dict[Any, Any] = {}
    if from_any:
        x, y = positions[ANY_STATE]
        any_box = FancyBboxPatch(
            (x - 0.8, y - 0.35),
            1.6,
            0.7,
            boxstyle="round,pad=0.05",
            facecolor="white",
            edgecolor="#555555",
            linestyle="--",
            zorder=3,
        )
        any_box.set_gid("any-state")
        ax.add_patch(any_box)
        patches[ANY_STATE] = any_box
        ax.text(
            x,
            y,
            "any state",
            ha="center",
            va="center",
            fontsize=FONT * zoom,
            style="italic",
            zorder=4,
        )
    for state in states:
        x, y = positions[state]
        name = state_name(state)
        if state == states[0]:
            face = "#fff3c4"
        elif state in sinks:
            face = "#eeeeee"
        else:
            face = "#dbe9f6"
        ellipse = Ellipse(
            (x, y),
            widths[state],
            0.75,
            facecolor=face,
            edgecolor="#333333",
            linewidth=(2.0 if state == states[0] else 1.2) * zoom,
            zorder=3,
        )
        ellipse.set_gid(f"state:{name}")
        ax.add_patch(ellipse)
        patches[state] = ellipse
        ax.text(
            x, y, name, ha="center", va="center", fontsize=FONT * zoom, fontweight="bold", zorder=4
        )
    for a, b, rad, lx, ly, label in geometry:
        if a == b:
            _self_loop(ax, positions[a], FancyArrowPatch)
        else:
            arrow = FancyArrowPatch(
                positions[a],
                positions[b],
                patchA=patches[a],
                patchB=patches[b],
                connectionstyle=f"arc3,rad={rad}",
                arrowstyle="-|>",
                mutation_scale=14 * zoom,
                color="#444444",
                linewidth=1.1 * zoom,
                zorder=2,
            )
            arrow.set_gid("transition-any" if a is ANY_STATE else "transition")
            ax.add_patch(arrow)
        ax.text(
            lx,
            ly,
            label,
            ha="center",
            va="bottom" if a == b else "center",
            fontsize=SMALL_FONT * zoom,
            color="#1f3d7a",
            linespacing=1.05,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            zorder=5,
        )
    return fig


def _self_loop(ax: Any, centre: tuple[float, float], arrow_class: Any) -> None:
    """A loop on top of a state's ellipse (0.75 high): a chord of 0.6 bent 0.42 upwards."""
    x, y = centre
    loop = arrow_class(
        (x - 0.3, y + 0.33),
        (x + 0.3, y + 0.33),
        connectionstyle="arc3,rad=-1.4",
        arrowstyle="-|>",
        mutation_scale=12,
        color="#444444",
        linewidth=1.0,
        zorder=2,
    )
    loop.set_gid("self-loop")
    ax.add_patch(loop)
