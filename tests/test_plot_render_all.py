"""render_all writes the standard figures of a run directory."""

from __future__ import annotations

from PIL import Image
from plot_traces import bounce_after_days, james_to_steve, link_outage

from mailsim.plot import render_all


def test_a_one_message_run_gets_sequence_timeline_and_topology(tmp_path):
    written = render_all(james_to_steve(), tmp_path / "run", dpi=40)
    assert [p.name for p in written] == ["sequence.png", "timeline.png", "topology.png"]
    for path in written:
        with Image.open(path) as image:
            # At 40 dpi even the one-row timeline (2.2 in high) is more than 80 pixels high.
            assert image.format == "PNG" and min(image.size) > 80


def test_more_than_five_messages_add_the_queue_figure(tmp_path):
    written = render_all(link_outage(), tmp_path, dpi=40)  # six messages
    assert [p.name for p in written] == [
        "sequence.png",
        "timeline.png",
        "topology.png",
        "queues.png",
    ]


def test_a_five_day_story_renders_within_the_size_limits(tmp_path):
    written = render_all(bounce_after_days(), tmp_path, dpi=40)
    with Image.open(tmp_path / "sequence.png") as image:
        # 205 failed tries would be far too tall; render_all keeps the start and the end.
        assert image.size[1] < 40 * 60
    assert len(written) == 3
