"""Named random streams derived from one seed (docs/design.md, principle 4).

Each part of a world that draws random numbers asks for its own stream by name, for example
``streams.get("fault", "link", "india-mail", "usa-mail")``. A stream's state depends only on the
seed and its name, so adding a node or a message does not reshuffle the draws of unrelated parts.
"""

from __future__ import annotations

import hashlib
import random


class RandomStreams:
    """A family of independent :class:`random.Random` generators keyed by name.

    Args:
        seed: the run's seed; the same seed and name always give the same sequence.
    """

    __slots__ = ("_streams", "seed")

    def __init__(self, seed: int) -> None:
        #: The seed every stream is derived from.
        self.seed = int(seed)
        self._streams: dict[str, random.Random] = {}

    def get(self, *name: object) -> random.Random:
        """The stream called ``name`` (parts are joined with '/'), created on first use."""
        key = "/".join(str(part) for part in name)
        stream = self._streams.get(key)
        if stream is None:
            digest = hashlib.sha256(f"{self.seed}:{key}".encode()).digest()
            stream = random.Random(int.from_bytes(digest[:8], "big"))
            self._streams[key] = stream
        return stream
