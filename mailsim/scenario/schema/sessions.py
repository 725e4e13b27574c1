"""Telnet sessions (the tutorial's typed dialogue, replayed) and trace options."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import (
    BeforeValidator,
    Field,
)

if TYPE_CHECKING:
    pass

from mailsim.scenario.schema.fields import (
    Duration,
    Flag,
    NodeName,
    Port,
    TypedLine,
    _Section,
    _whole,
)


class TelnetSession(_Section):
    """A person typing lines at a server, as in the story's ``telnet servername 25``."""

    at: Duration = Field(description="when the session starts")
    client: NodeName = Field(alias="from", description="the node the person sits at")
    server: NodeName = Field(alias="to", description="the node telnet connects to")
    port: Port = Field(default=25, description="the port telnet connects to")
    lines: Annotated[list[TypedLine], Field(min_length=1)] = Field(
        description="the lines typed, in order, like ['HELO usa.com', 'QUIT']"
    )
    wait_for_reply: Flag = Field(
        default=True, description="wait for the server's reply to each line"
    )
    pause: Duration = Field(default=0.0, description="time the person takes before each line")


class TraceOptions(_Section):
    """What the trace records beyond the defaults."""

    segments: Flag = Field(default=False, description="record every TCP segment")
    pcap: Flag = Field(default=False, description="write trace.pcap for Wireshark")
    data_lines: Annotated[int, BeforeValidator(_whole(0))] | None = Field(
        default=20, description="DATA lines recorded per message (null: all)"
    )
