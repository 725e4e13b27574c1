"""The animation plays a trace over its topology and saves as GIF (MP4 only with ffmpeg)."""

from __future__ import annotations

import gc

import pytest
from PIL import Image
from plot_traces import james_to_steve, link_outage

from mailsim.plot import PlotError, animate, save_animation
from mailsim.plot.animation import TimeWarp


def test_time_warp_plays_short_gaps_at_real_pace_and_squashes_long_ones():
    warp = TimeWarp([0.0, 1.0, 2.0, 3.0, 1003.0])
    # Gaps 1, 1, 1, 1000 s: the median gap is 1 s, so c0 = 10 s; the 1000 s gap becomes
    # 10 * (1 + log10(1000 / 10)) = 30 s of animation time; 3 + 30 = 33 in all.
    assert warp.c0 == 10.0
    assert warp.total == pytest.approx(33.0)
    assert warp.real(1.5) == (1.5, False)
    t, fast = warp.real(18.0)  # half-way through the squashed gap
    assert t == pytest.approx(503.0) and fast


def test_animation_has_fps_times_duration_frames_and_plays_in_a_notebook():
    animation = animate(james_to_steve(), fps=3, duration=1)
    html = animation.to_jshtml()
    # The HTML player embeds one image per frame.
    assert html.count("data:image/png;base64") == 3


def test_gif_is_written_with_pillow(tmp_path):
    animation = animate(link_outage(), fps=4, duration=1)
    path = save_animation(animation, tmp_path / "outage.gif", dpi=40)
    with Image.open(path) as gif:
        assert gif.n_frames == 4


# These tests make animations they never play; matplotlib warns when such an animation is
# garbage collected, so collect it inside the test where the warning is expected.
_UNPLAYED = pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")


@_UNPLAYED
def test_mp4_without_ffmpeg_is_a_clear_error(tmp_path, monkeypatch):
    from matplotlib.animation import writers

    monkeypatch.setattr(writers, "is_available", lambda name: False)
    animation = animate(james_to_steve(), fps=2, duration=1)
    with pytest.raises(PlotError, match="ffmpeg"):
        save_animation(animation, tmp_path / "story.mp4")
    del animation
    gc.collect()


@_UNPLAYED
def test_unknown_format_and_bad_arguments_are_clear_errors(tmp_path):
    animation = animate(james_to_steve(), fps=2, duration=1)
    with pytest.raises(PlotError, match=r"\.gif or \.mp4"):
        save_animation(animation, tmp_path / "story.avi")
    with pytest.raises(PlotError, match="positive"):
        animate(james_to_steve(), fps=0)
    with pytest.raises(PlotError, match="nothing"):
        animate([])
    del animation
    gc.collect()


@_UNPLAYED
def test_slide_frames_of_an_outage_show_every_envelope_clear_and_the_link_down():
    import itertools

    animation = animate(link_outage(), fps=5, duration=8, size="slide")
    fig = animation._fig
    ax = fig.axes[0]
    checked = 0
    for frame in range(40):
        animation._func(frame)  # draw one frame, as the writers do, without encoding it
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        shown = [t for t in ax.texts if t.get_visible() and t.get_text()]
        assert min(t.get_fontsize() for t in shown) >= 12
        envelopes = [t for t in shown if t.get_text().startswith("msg-")]
        down = [t for t in shown if t.get_text() == "DOWN"]
        if len(envelopes) < 3 or not down:
            continue
        checked += 1
        # No envelope name covers another name, a node's or a link's label.
        boxes = {id(t): t.get_window_extent(renderer) for t in shown}
        for one, other in itertools.combinations(shown, 2):
            if one in envelopes or other in envelopes:
                assert not boxes[id(one)].overlaps(boxes[id(other)]), (
                    frame,
                    one.get_text(),
                    other.get_text(),
                )
    # The India-USA link is down for most of the story with several messages waiting.
    assert checked >= 5
    del animation
    gc.collect()
