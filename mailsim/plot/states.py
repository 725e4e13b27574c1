"""State diagrams of the protocol machines, drawn from their transition tables.

The SMTP and POP3 machines keep every rule in one table shaped ``{state: {trigger: new_state}}``
(after h11's ``_state.py``); :func:`state_diagram` draws any such table, so the
figure students see is the very table the code runs.

Layout: the first state of the table is the start. States are placed in columns by the longest
path from the start once the edges that go back (found by a depth-first search) are set aside, so
the normal flow reads left to right; the longest such path is a straight line (the spine) and the
other states of a column stack above it. A flow too long for the page wraps into a second band of
columns below the first, when that lets the type be larger. Dead ends that several states lead to
(CLOSED, ERROR), and funnels that lead only to them (an SMTP client's QUIT_SENT), sit in a row
below. A rule that most states share (``"peer closed" -> CLOSED`` from every state) is drawn once,
from a dashed "any state" box; a rule into that row that several states share (``QUIT -> CLOSED``,
``4xx/5xx -> QUIT_SENT``) is drawn once from a dashed box naming them. Forward edges are straight,
edges that skip columns or go back are arcs, and two opposite arcs bow to the side of their chord
that has room for their labels (:mod:`mailsim.plot.state_arcs`); triggers of the same edge are
joined into one label, and each label goes where its rendered box covers no other label, state
or edge if it can (:mod:`mailsim.plot.state_labels`).
Geometry is measured in ems of the label type, so the default and the slide look are one layout.
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
    SLIDE_MIN_FONT,
    SMALL_FONT,
    PlotError,
    look_for,
    new_figure,
)
from mailsim.plot.state_arcs import back_depth, bend, bow_to_room
from mailsim.plot.state_labels import (
    LOOP_RAD,
    NARROW_LABEL_WIDTH,
    loop_ends,
    measure,
    place_labels,
    triggers_text,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


#: Geometry, in ems of the label type: a state's ellipse is as high as 2.6 lines of type, the
#: rows of a column 3.4 ems apart beyond that (room for a two-line label), the columns 4.2 ems
#: apart (room for a short label on a straight edge).
ELLIPSE_HEIGHT = 2.6
ROW_GAP = 3.4
COLUMN_GAP = 4.2
#: A family of rules into the bottom row is folded into one box when this many states share it.
FAMILY_MIN = 3


def state_name(state: Any) -> str:
    """How a state is written on the diagram: an Enum member's name, else ``str(state)``."""
    name = getattr(state, "name", None)
    return str(name) if name is not None else str(state)


#: A state name longer than this is written on two lines, broken at an underscore.
NAME_LINE = 12
#: The ellipse of a state whose name takes two lines.
TALL_ELLIPSE_HEIGHT = 3.6


def _written_name(state: Any) -> str:
    """A state's name as drawn: one line, or two broken at the underscore nearest the middle."""
    name = state_name(state)
    cuts = [i for i, c in enumerate(name) if c == "_"]
    if len(name) <= NAME_LINE or not cuts:
        return name
    cut = min(cuts, key=lambda i: abs(i - len(name) / 2))
    return f"{name[: cut + 1]}\n{name[cut + 1 :]}"


#: Stands for "every state" in a diagram: the source of transitions that most states share.
ANY_STATE = object()


class _Family:
    """A box standing for several states that share rules into the bottom row."""

    def __init__(self, members: tuple[Any, ...], text: str) -> None:
        self.members = members
        self.text = text


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


def _family_text(members: tuple[Any, ...], every_name: list[str]) -> str:
    """The members' names, shortened to a pattern (``AUTH_*_SENT``) where one names exactly
    three or more of them, wrapped for the box."""
    names = [state_name(m) for m in members]

    def pattern(name: str) -> str | None:
        parts = name.split("_")
        return f"{parts[0]}_*_{parts[-1]}" if len(parts) >= 3 else None

    written: list[str] = []
    for name in names:
        glob = pattern(name)
        group = [n for n in names if glob and pattern(n) == glob]
        # Only a pattern that names no state outside the family, and stands for three or more.
        if glob and len(group) >= 3 and group == [n for n in every_name if pattern(n) == glob]:
            if glob not in written:
                written.append(glob)
        else:
            written.append(name)
    return "\n".join(textwrap.wrap(", ".join(written), width=26, break_long_words=False))


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


def _spine(main: list[Any], forward: list[tuple[Any, Any]]) -> set[Any]:
    """The longest forward path from the start: the states drawn on one straight line."""
    successors: dict[Any, list[Any]] = {s: [] for s in main}
    for a, b in forward:
        if a in successors and b in successors:
            successors[a].append(b)
    height: dict[Any, int] = {}

    def reach(state: Any) -> int:  # forward edges form a DAG, so this ends
        if state not in height:
            height[state] = 0
            height[state] = max((reach(b) + 1 for b in successors[state]), default=0)
        return height[state]

    path = [main[0]]
    while successors[path[-1]]:
        path.append(max(successors[path[-1]], key=reach))
    return set(path)


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
        size: "default" (sized to the diagram) or "slide": 16:9, type of at least
            :data:`SLIDE_MIN_FONT` points, the diagram zoomed to fill the slide.

    Returns:
        The figure. Each state is an Ellipse patch with gid ``state:<name>``; each (from, to) pair
        of states is one FancyArrowPatch with gid ``transition`` (a self-loop has gid
        ``self-loop``) labelled with all its triggers; the "any state" box has gid ``any-state``
        and its arrows ``transition-any``; a box for a family of states ``family`` and its arrows
        ``transition-family``. Edge labels have gid ``label``.

    Raises:
        PlotError: the table is empty.
    """
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
    sinks = _bottom_row(states, edges, from_any)
    boxes = _fold_families(transitions, states, edges, sinks, everywhere)
    loop_note = _fold_loops(edges, [state_name(s) for s in states])
    look = look_for(size)
    label_pt, name_pt = (SLIDE_MIN_FONT, SLIDE_MIN_FONT) if look.slide else (SMALL_FONT, FONT)
    heights = {
        s: TALL_ELLIPSE_HEIGHT if "\n" in _written_name(s) else ELLIPSE_HEIGHT for s in states
    }
    # Whether the flow wraps into two bands is decided at slide size, so both looks agree.
    slide_sizes = _sizes(states, heights, boxes, from_any, edges, SLIDE_MIN_FONT, SLIDE_MIN_FONT)
    where = (states, edges, layer, back, sinks, boxes, from_any)
    _, _, cut = _place(*where, *slide_sizes)
    widths, label_ems = (
        slide_sizes
        if look.slide
        else _sizes(states, heights, boxes, from_any, edges, label_pt, name_pt)
    )
    positions, slot, _ = _place(*where, widths, label_ems, cut=cut)
    pairs = set(edges)
    arcs: list[tuple[Any, Any, float, list[str]]] = []
    for (a, b), triggers in edges.items():
        arcs.append(
            (a, b, 0.0 if a == b else bend(a, b, positions, back, pairs, layer, slot), triggers)
        )
    for family, rules in boxes.items():
        arcs += [(family, target, 0.0, triggers) for target, triggers in rules.items()]
    arcs += [(ANY_STATE, target, 0.0, triggers) for target, triggers in from_any.items()]
    every_height = {item: heights.get(item, ELLIPSE_HEIGHT) for item in positions}
    bow_to_room(arcs, positions, widths, every_height)
    # Extents: the states, the arcs' bulges and room for the labels over the top row's loops.
    xs, ys = [], []
    for item, (x, y) in positions.items():
        xs += [x - widths[item] / 2, x + widths[item] / 2]
        ys += [y - heights.get(item, ELLIPSE_HEIGHT) / 2, y + heights.get(item, ELLIPSE_HEIGHT) / 2]
    for a, b, rad, triggers in arcs:
        (xa, ya), (xb, yb) = positions[a], positions[b]
        if a == b:
            lines = triggers_text(triggers).count("\n") + 1
            ys.append(ya + heights[a] / 2 + 1.6 + 1.25 * lines)
        else:
            ys.append((ya + yb) / 2 - rad * (xb - xa) / 2)
    x_lo, x_hi = min(xs) - 0.5, max(xs) + 0.5
    y_lo, y_hi = min(ys) - 1.0, max(ys) + 0.8
    em = label_pt / 72  # inches
    title_in = 2.4 * label_pt / 72
    if ax is None:
        if look.slide:
            width, height = SLIDE_INCHES
        else:
            width, height = (x_hi - x_lo) * em + 0.2, (y_hi - y_lo) * em + title_in
        fig = new_figure(width, height)
        ax = fig.add_axes((0.005, 0.0, 0.99, 1 - title_in / height))
    else:
        fig = ax.get_figure()
    box = ax.get_position()
    fig_w, fig_h = fig.get_size_inches()
    avail_w, avail_h = box.width * fig_w, box.height * fig_h
    # Inches per em: fill the axes, but on a slide never set type more than 1.6 times the least.
    inch = min(avail_w / (x_hi - x_lo), avail_h / (y_hi - y_lo))
    if look.slide:
        inch = min(inch, 1.6 * em)
    zoom = inch / em
    half_w, half_h = avail_w / inch / 2, avail_h / inch / 2
    centre_x, centre_y = (x_lo + x_hi) / 2, (y_lo + y_hi) / 2
    ax.set_xlim(centre_x - half_w, centre_x + half_w)
    ax.set_ylim(centre_y - half_h, centre_y + half_h)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=(name_pt + 2) * zoom, loc="left")
    label_size, name_size = label_pt * zoom, name_pt * zoom
    line = (label_pt / SMALL_FONT) * zoom  # line widths grow with the type
    patches = _draw_nodes(
        ax, states, positions, widths, heights, sinks, boxes, from_any, name_size, label_size, line
    )
    arrows = _draw_arrows(ax, arcs, positions, heights, patches, line)
    if loop_note:
        note = ax.text(
            0.0,
            0.0,
            "\n".join(textwrap.wrap(loop_note, width=40, break_long_words=False)),
            transform=ax.transAxes,
            ha="left",
            va="bottom",
            fontsize=label_size,
            style="italic",
            color="#1f3d7a",
            gid="loop-note",
        )
        patches["loop-note"] = note
    place_labels(
        fig,
        ax,
        arcs,
        positions,
        every_height,
        widths,
        patches,
        arrows,
        label_size,
        any_state=ANY_STATE,
    )
    return fig


def _sizes(
    states: list[Any],
    heights: dict[Any, float],
    boxes: dict[_Family, dict[Any, list[str]]],
    from_any: dict[Any, list[str]],
    edges: dict[tuple[Any, Any], list[str]],
    label_pt: float,
    name_pt: float,
) -> tuple[dict[Any, float], dict[frozenset[Any], float]]:
    """Width (ems) of every state's ellipse and every box, and of every level arc's label."""
    # An ellipse is as wide as its name plus about a letter and a half of the name's type each side.
    pad = 1.8 * name_pt / label_pt
    # The name's box must fit inside the ellipse: w/W and h/H on the unit circle, plus a margin.
    widths = {}
    for s in states:
        text = _written_name(s)
        h = 1.25 * (text.count("\n") + 1) * name_pt / label_pt
        w = measure(text, name_pt, bold=True) / label_pt
        widths[s] = w / math.sqrt(1 - min(0.8, (h / heights[s]) ** 2)) + pad / 3
    for family in boxes:
        widths[family] = measure(family.text, label_pt, italic=True) / label_pt + 1.6
    if from_any:
        widths[ANY_STATE] = measure("any state", name_pt, italic=True) / label_pt + 2.0
    label_ems = {frozenset((a, b)): _label_ems(t, label_pt) for (a, b), t in edges.items()}
    for family, rules in boxes.items():
        for target, t in rules.items():
            label_ems[frozenset((family, target))] = measure(triggers_text(t), label_pt) / label_pt
    return widths, label_ems


def _bottom_row(
    states: list[Any], edges: dict[tuple[Any, Any], list[str]], from_any: dict[Any, list[str]]
) -> list[Any]:
    """Dead ends reached from several states (CLOSED, ERROR, UPDATE), and funnels into them."""
    out_degree = {s: sum(1 for (a, b) in edges if a == s and b != s) for s in states}
    in_from = {s: {a for (a, b) in edges if b == s and a != s} for s in states}
    sinks = [
        s
        for s in states
        if out_degree[s] == 0 and (len(in_from[s]) >= 2 or s in from_any) and s != states[0]
    ]
    # Funnels: states many others lead to that lead only to dead ends (QUIT_SENT -> CLOSED).
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
    return sinks


def _fold_families(
    transitions: Mapping[Any, Mapping[str, Any]],
    states: list[Any],
    edges: dict[tuple[Any, Any], list[str]],
    sinks: list[Any],
    everywhere: set[tuple[str, Any]],
) -> dict[_Family, dict[Any, list[str]]]:
    """Take the rules into the bottom row that :data:`FAMILY_MIN` or more states share out of
    ``edges``: each set of such states becomes one box, with one arrow per target."""
    holders: dict[tuple[str, Any], list[Any]] = {}
    for source, row in transitions.items():
        for trigger, target in row.items():
            if target in sinks and target != source and (trigger, target) not in everywhere:
                holders.setdefault((str(trigger), target), []).append(source)
    names = [state_name(s) for s in states]
    families: dict[tuple[Any, ...], _Family] = {}
    boxes: dict[_Family, dict[Any, list[str]]] = {}
    for (trigger, target), sources in holders.items():
        if len(sources) < FAMILY_MIN:
            continue
        members = tuple(sources)
        if members not in families:
            families[members] = _Family(members, _family_text(members, names))
            boxes[families[members]] = {}
        boxes[families[members]].setdefault(target, []).append(trigger)
        for source in sources:
            edges[(source, target)].remove(trigger)
            if not edges[(source, target)]:
                del edges[(source, target)]
    return boxes


def _fold_loops(edges: dict[tuple[Any, Any], list[str]], every_name: list[str]) -> str:
    """Take the self-loop triggers that :data:`FAMILY_MIN` or more states share (NOOP, HELP,
    VRFY, EXPN in every SMTP session state) off their loops; return the note that says them once."""
    holders: dict[str, list[Any]] = {}
    for (a, b), triggers in edges.items():
        if a == b:
            for trigger in triggers:
                holders.setdefault(trigger, []).append(a)
    shared: dict[tuple[Any, ...], list[str]] = {}
    for trigger, holding in holders.items():
        if len(holding) >= FAMILY_MIN:
            shared.setdefault(tuple(holding), []).append(trigger)
    notes = []
    for members, triggers in shared.items():
        for state in members:
            edges[(state, state)] = [t for t in edges[(state, state)] if t not in triggers]
            if not edges[(state, state)]:
                del edges[(state, state)]
        where = _family_text(members, every_name).replace("\n", " ")
        notes.append(f"{', '.join(triggers)}: no change of state in {where}")
    return "\n".join(notes)


def _place(
    states: list[Any],
    edges: dict[tuple[Any, Any], list[str]],
    layer: dict[Any, int],
    back: set[tuple[Any, Any]],
    sinks: list[Any],
    boxes: dict[_Family, dict[Any, list[str]]],
    from_any: dict[Any, list[str]],
    widths: dict[Any, float],
    label_ems: dict[frozenset[Any], float],
    *,
    cut: int | str | None = "choose",
) -> tuple[dict[Any, tuple[float, float]], dict[Any, int], int | None]:
    """Centre of every state and box, in ems, and the row of each flow state (0: the spine).

    The flow takes one band of columns if that fits a slide at full type, else two if that fits
    better; the bottom row goes under it.
    """
    main = [s for s in states if s not in sinks]
    forward = [(a, b) for (a, b) in edges if a != b and (a, b) not in back]
    spine = _spine(main, forward)
    columns = sorted({layer[s] for s in main})
    members = [[s for s in main if layer[s] == c] for c in columns]
    column_of = {s: i for i, group in enumerate(members) for s in group}
    # Rows: the spine on row 0, the other states of a column above it, those whose predecessors
    # sit lower nearer the spine.
    slot: dict[Any, int] = {}
    for group in members:

        def barycentre(state: Any) -> float:
            ys = [slot[a] for (a, b) in edges if b == state and a in slot]
            return sum(ys) / len(ys) if ys else 0.0

        rest = sorted((s for s in group if s not in spine), key=barycentre)
        first = 1 if any(s in spine for s in group) else 0
        for s in group:
            if s in spine:
                slot[s] = 0
        for index, s in enumerate(rest):
            slot[s] = first + index
    column_width = [max(widths[s] for s in group) for group in members]
    # Neighbouring columns joined by a level arrow leave room for its label on it.
    gaps = [COLUMN_GAP] * len(members)
    for a, b in edges:
        level = a in column_of and b in column_of and slot[a] == slot[b]
        if level and abs(column_of[a] - column_of[b]) == 1:
            right = max(column_of[a], column_of[b])
            room = label_ems.get(frozenset((a, b)), 0.0) + 1.5
            gaps[right] = max(gaps[right], room)
    row_step = ELLIPSE_HEIGHT + ROW_GAP
    loop_room = {
        a: 1.25 * len(triggers_text(t).splitlines()) + 1.0 for (a, b), t in edges.items() if a == b
    }

    def layout(
        at: int | None, drop: float = 0.0
    ) -> tuple[dict[Any, tuple[float, float]], dict[Any, int], int | None]:
        bounds = [0, len(members)] if at is None else [0, at, len(members)]
        positions: dict[Any, tuple[float, float]] = {}
        rows: dict[Any, int] = {}
        top = 0.0
        for start, stop in itertools.pairwise(bounds):
            band = [s for c in range(start, stop) for s in members[c]]
            # A band whose back edges bend below its spine stacks its other states above it;
            # one without stacks them below, nearer the next band.
            bends_below = any(a in band and b in band and slot[a] + slot[b] == 0 for a, b in back)
            sign = 1 if bends_below else -1
            for s in band:
                rows[s] = sign * slot[s]
            # Height of each state over its column's row 0: a row apart, more over a state
            # whose self-loop carries a label, so the label fits under the state above.
            lift: dict[Any, float] = {}
            for c in range(start, stop):
                column = sorted(members[c], key=lambda m: rows[m])
                heights_up = [0.0]
                for lower, _ in itertools.pairwise(column):
                    heights_up.append(heights_up[-1] + row_step + loop_room.get(lower, 0.0))
                zero = heights_up[[rows[m] for m in column].index(0)]
                for m, h in zip(column, heights_up, strict=True):
                    lift[m] = h - zero
            y0 = top - max(lift[s] for s in band)
            x = 0.0
            for c in range(start, stop):
                if c > start:
                    x += (column_width[c - 1] + column_width[c]) / 2 + gaps[c]
                for s in members[c]:
                    positions[s] = (x, y0 + lift[s])
            depth = max(
                (
                    back_depth(abs(positions[a][0] - positions[b][0]))
                    for (a, b) in back
                    if a in band and b in band and a != b and rows[a] + rows[b] == 0
                ),
                default=0.0,
            )
            floor = min(lift[s] for s in band) + y0 - ELLIPSE_HEIGHT / 2 - depth
            # The next band's top row, with room for the labels over its loops.
            top = floor - 1.3 * ROW_GAP - ELLIPSE_HEIGHT / 2 - 1.0
        _place_bottom_row(
            positions,
            floor - ROW_GAP - ELLIPSE_HEIGHT / 2 - drop,
            edges,
            sinks,
            boxes,
            from_any,
            widths,
            label_ems,
            drop,
        )
        return positions, rows, at

    def fill(positions: dict[Any, tuple[float, float]]) -> float:
        xs = [x for x, _ in positions.values()]
        ys = [y for _, y in positions.values()]
        w = max(xs) - min(xs) + 2 * max(widths.values())
        h = max(ys) - min(ys) + 4 * ELLIPSE_HEIGHT
        return min(SLIDE_INCHES[0] / w, SLIDE_INCHES[1] / h)  # inches per em on a slide

    def roomier(
        chosen: tuple[dict[Any, tuple[float, float]], dict[Any, int], int | None],
    ) -> tuple[dict[Any, tuple[float, float]], dict[Any, int], int | None]:
        # Height a slide has to spare at full type goes, half and half, above the bottom row and
        # above the "any state" box, where the arrows need room for their labels (the heights
        # are in fixed ems, so both looks agree).
        ys = [y for _, y in chosen[0].values()]
        spare = 0.8 * SLIDE_INCHES[1] * 72 / SLIDE_MIN_FONT - (
            max(ys) - min(ys) + 4 * ELLIPSE_HEIGHT
        )
        return layout(chosen[2], min(spare / 2, 5.0)) if spare > 0 else chosen

    if cut != "choose":
        return roomier(layout(cut if isinstance(cut, int) else None))
    one = layout(None)
    if fill(one[0]) * 72 / SLIDE_MIN_FONT >= 1.0:
        return roomier(one)  # fits a slide in one band at full type: no need to wrap
    # Wrap the flow into a second band only where no back edge would run between the bands.
    cuts = [
        c
        for c in range(2, len(members) - 1)
        if not any(
            (column_of[a] < c) != (column_of[b] < c)
            for a, b in back
            if a in column_of and b in column_of
        )
    ]
    if not cuts:
        return roomier(one)
    total = sum(column_width)

    def cost(c: int) -> tuple[int, int, float]:
        # Fewest states entered from the band above (a flow that meets in one state, like an
        # SMTP client's IDLE, wraps best there), then fewest edges between the bands, then
        # bands of even width.
        crossing = [
            (a, b)
            for a, b in edges
            if a in column_of and b in column_of and (column_of[a] < c) != (column_of[b] < c)
        ]
        return len({b for _, b in crossing}), len(crossing), abs(sum(column_width[:c]) - total / 2)

    two = layout(min(cuts, key=cost))
    return roomier(two if fill(two[0]) > 1.05 * fill(one[0]) else one)


def _place_bottom_row(
    positions: dict[Any, tuple[float, float]],
    row_y: float,
    edges: dict[tuple[Any, Any], list[str]],
    sinks: list[Any],
    boxes: dict[_Family, dict[Any, list[str]]],
    from_any: dict[Any, list[str]],
    widths: dict[Any, float],
    label_ems: dict[frozenset[Any], float],
    drop: float,
) -> None:
    """The bottom row: each dead end and family box under the states that lead to it."""
    middle = sum(x for x, _ in positions.values()) / max(1, len(positions))
    wanted: list[tuple[float, int, Any]] = []
    for order, state in enumerate(sinks):
        xs = [positions[a][0] for (a, b) in edges if b == state and a in positions and a != b]
        for family, rules in boxes.items():
            if state in rules:
                xs += [positions[m][0] for m in family.members if m in positions]
        # Dead ends reached only through the row (CLOSED after QUIT_SENT) go to its right end.
        wanted.append((sum(xs) / len(xs) if xs else math.inf, order, state))
    wanted.sort(key=lambda w: (w[0], w[1]))
    row = [state for _, _, state in wanted]
    # A family box sits next to the first of its targets, on a side where no arrow of the row
    # runs, so its arrows cross nothing.
    linked = {frozenset((a, b)) for a, b in edges}
    start = {item: x for x, _, item in wanted if x != math.inf}
    for family, rules in boxes.items():
        target = row[min(row.index(t) for t in rules)]
        at = row.index(target)
        left = row[at - 1] if at > 0 else None
        right = row[at + 1] if at + 1 < len(row) else None
        side = -1 if left is None or frozenset((left, target)) not in linked else 1
        if side == 1 and right is not None and frozenset((right, target)) in linked:
            side = -1 if left is None else 1
        row.insert(at if side == -1 else at + 1, family)
        start[family] = start.get(target, middle) + side * (widths[family] + widths[target]) / 2
    right_edge = -math.inf
    for previous, item in zip([None, *row], row, strict=False):
        x = start.get(item, middle if right_edge == -math.inf else -math.inf)
        # Neighbours joined by an arrow leave room for its label on it.
        gap = max(COLUMN_GAP, label_ems.get(frozenset((previous, item)), 0.0) + 3.0)
        x = max(x, right_edge + widths[item] / 2 + gap)
        positions[item] = (x, row_y)
        right_edge = x + widths[item] / 2
    if from_any:
        # The "any state" box sits under the states its rules lead to.
        targets_x = [positions[t][0] for t in from_any]
        positions[ANY_STATE] = (
            sum(targets_x) / len(targets_x),
            min(positions[t][1] for t in from_any) - ELLIPSE_HEIGHT - ROW_GAP - 1.5 - drop,
        )


def _draw_nodes(
    ax: Any,
    states: list[Any],
    positions: dict[Any, tuple[float, float]],
    widths: dict[Any, float],
    heights: dict[Any, float],
    sinks: list[Any],
    boxes: dict[_Family, dict[Any, list[str]]],
    from_any: dict[Any, list[str]],
    name_size: float,
    label_size: float,
    line: float,
) -> dict[Any, Any]:
    """The ellipses of the states and the dashed boxes; returns the patch of each."""
    from matplotlib.patches import Ellipse, FancyBboxPatch

    patches: dict[Any, Any] = {}
    dashed: list[tuple[Any, str, str, float]] = [
        (family, family.text, "family", label_size) for family in boxes
    ]
    if from_any:
        dashed.append((ANY_STATE, "any state", "any-state", name_size))
    for item, text, gid, size in dashed:
        x, y = positions[item]
        w, h = widths[item], ELLIPSE_HEIGHT * (1 + 0.4 * text.count("\n"))
        patch = FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.2",
            facecolor="white",
            edgecolor="#555555",
            linestyle="--",
            linewidth=line,
            zorder=3,
        )
        patch.set_gid(gid)
        ax.add_patch(patch)
        patches[item] = patch
        ax.text(x, y, text, ha="center", va="center", fontsize=size, style="italic", zorder=4)
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
            heights[state],
            facecolor=face,
            edgecolor="#333333",
            linewidth=(2.0 if state == states[0] else 1.2) * line,
            zorder=3,
        )
        ellipse.set_gid(f"state:{name}")
        ax.add_patch(ellipse)
        patches[state] = ellipse
        ax.text(
            x,
            y,
            _written_name(state),
            ha="center",
            va="center",
            fontsize=name_size,
            fontweight="bold",
            linespacing=1.0,
            zorder=4,
        )
    return patches


def _draw_arrows(
    ax: Any,
    arcs: list[tuple[Any, Any, float, list[str]]],
    positions: dict[Any, tuple[float, float]],
    heights: dict[Any, float],
    patches: dict[Any, Any],
    line: float,
) -> list[Any]:
    """One arrow per arc (a self-loop on top of its state; its label may move it under), in
    the order of arcs."""
    from matplotlib.patches import FancyArrowPatch

    arrows = []
    for a, b, rad, _ in arcs:
        if a == b:
            arrow = FancyArrowPatch(
                *loop_ends(positions[a], heights[a], side=1),
                connectionstyle=f"arc3,rad={LOOP_RAD}",
                arrowstyle="-|>",
                mutation_scale=12 * line,
                color="#444444",
                linewidth=line,
                zorder=2,
            )
            arrow.set_gid("self-loop")
        else:
            arrow = FancyArrowPatch(
                positions[a],
                positions[b],
                patchA=patches[a],
                patchB=patches[b],
                connectionstyle=f"arc3,rad={rad}",
                arrowstyle="-|>",
                mutation_scale=14 * line,
                color="#444444",
                linewidth=1.1 * line,
                zorder=2,
            )
            if a is ANY_STATE:
                arrow.set_gid("transition-any")
            elif isinstance(a, _Family):
                arrow.set_gid("transition-family")
            else:
                arrow.set_gid("transition")
        ax.add_patch(arrow)
        arrows.append(arrow)
    return arrows


def _label_ems(triggers: list[str], points: float) -> float:
    """How wide a level arc's label needs the gap (ems): its usual wrapping up to 6 ems wide,
    else its narrow one."""
    wide = measure(triggers_text(triggers), points) / points
    return (
        wide
        if wide <= 6.0
        else measure(triggers_text(triggers, NARROW_LABEL_WIDTH), points) / points
    )
