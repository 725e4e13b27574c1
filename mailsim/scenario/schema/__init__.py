"""The scenario language: typed models of a YAML scenario, and the checks that tie them together.

A scenario is data (docs/design.md, principle 3). This package says what a valid scenario is, in two
layers:

1. **Models** (pydantic v2): every section and field, its type, its default and its unit. Human
   units are parsed here, once, by :mod:`mailsim.mail.units`, so a model holds SI base units only:
   durations and times are float seconds, sizes int bytes, bandwidths float bits per second,
   message rates float messages per second. The builder never parses text.
2. **Reference checks** (:func:`check_references`): what no single field can know, such as a link
   to a node that does not exist, a user at a domain no server serves, a message sent after the
   end of the run, or two outages of the same link that overlap.

Every field is documented for teachers in ``docs/scenario-language.md``; a test keeps the two in
step. Error messages talk to a student: what was found and what would be right.
The modules follow the sections of a scenario file: ``fields`` (the scalar types and units),
``servers``, ``network``, ``people``, ``faults``, ``sessions`` (telnet and trace), ``web``
(web servers and downloads), ``scenario``
(the whole), then ``references`` and ``shapes`` (checks across sections, and explanations of a
list item whose kind could not be told), with ``issues`` for the problems they report.
"""

from __future__ import annotations

from mailsim.scenario.schema.faults import (
    Fault,
    LinkOutage,
    NodeCrash,
    RandomFault,
    ReplyFault,
    ReplySpec,
    ServiceRef,
    ServiceStop,
)
from mailsim.scenario.schema.fields import (
    DOCUMENTATION_RANGES,
)
from mailsim.scenario.schema.issues import (
    Issue,
)
from mailsim.scenario.schema.network import (
    FORWARDING_KINDS,
    IMPLICIT_DNS_NAME,
    KIND_NAMES,
    SERVICE_PORTS,
    ARecord,
    DnsConfig,
    DnsRecord,
    Link,
    MxRecord,
    Node,
)
from mailsim.scenario.schema.people import (
    Attachment,
    FileAttachment,
    FixedSize,
    GeneratedAttachment,
    LognormalSize,
    Message,
    SizeSpec,
    TrafficGenerator,
    UniformSize,
    User,
)
from mailsim.scenario.schema.references import (
    ScenarioParts,
    check_references,
)
from mailsim.scenario.schema.scenario import (
    Scenario,
)
from mailsim.scenario.schema.servers import (
    POLICY_FIELDS,
    CommandTimeouts,
    RetrySettings,
    ServerSettings,
    overlay,
)
from mailsim.scenario.schema.sessions import (
    TelnetSession,
    TraceOptions,
)
from mailsim.scenario.schema.shapes import (
    explain_shape,
)
from mailsim.scenario.schema.web import (
    DownloadSpec,
    WebFile,
    WebServerSpec,
)

__all__ = [
    "DOCUMENTATION_RANGES",
    "FORWARDING_KINDS",
    "IMPLICIT_DNS_NAME",
    "KIND_NAMES",
    "POLICY_FIELDS",
    "SERVICE_PORTS",
    "ARecord",
    "Attachment",
    "CommandTimeouts",
    "DnsConfig",
    "DnsRecord",
    "DownloadSpec",
    "Fault",
    "FileAttachment",
    "FixedSize",
    "GeneratedAttachment",
    "Issue",
    "Link",
    "LinkOutage",
    "LognormalSize",
    "Message",
    "MxRecord",
    "Node",
    "NodeCrash",
    "RandomFault",
    "ReplyFault",
    "ReplySpec",
    "RetrySettings",
    "Scenario",
    "ScenarioParts",
    "ServerSettings",
    "ServiceRef",
    "ServiceStop",
    "SizeSpec",
    "TelnetSession",
    "TraceOptions",
    "TrafficGenerator",
    "UniformSize",
    "User",
    "WebFile",
    "WebServerSpec",
    "check_references",
    "explain_shape",
    "overlay",
]
