"""People and mail: users, messages with their attachments, and generated traffic."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
)

from mailsim.scenario.errors import shown
from mailsim.scenario.schema.fields import (
    Address,
    AttachmentKind,
    CheckInterval,
    ContentSize,
    DisplayName,
    Duration,
    EventRate,
    FileName,
    NodeName,
    Password,
    PositiveContentSize,
    PositiveDuration,
    Probability,
    Recipients,
    SubjectText,
    Text,
    _empty_if_null,
    _fail,
    _number,
    _Section,
    _whole,
)


class User(_Section):
    """A person with a mailbox, whose user agent runs on ``host``."""

    address: Address = Field(description="the user's e-mail address, like steve@usa.com")
    password: Password = Field(description="the password the user agent logs in with")
    host: NodeName = Field(description="the node the user agent runs on, like steve-pc")
    name: DisplayName | None = Field(default=None, description="display name for the From header")
    check_mail_every: CheckInterval | None = Field(
        default=None, description="how often the user agent fetches mail over POP3 (null: never)"
    )
    submission_server: NodeName | None = Field(
        default=None,
        description="the mail server the user submits to (the domain's server if absent)",
    )

    @property
    def domain(self) -> str:
        """The part of the address after '@'."""
        return self.address.rsplit("@", 1)[1]


class GeneratedAttachment(_Section):
    """An attachment of made-up content of a given size (a photo, a video, ...)."""

    kind: AttachmentKind = Field(description="photo, video, document or file")
    size: PositiveContentSize = Field(description="its size before encoding, like 2MB")
    name: FileName | None = Field(default=None, description="file name shown in the message")


class FileAttachment(_Section):
    """An attachment read from a real file (relative paths start at the scenario's folder)."""

    file: Path = Field(description="path of the file")
    name: FileName | None = Field(
        default=None, description="file name shown (the file's own by default)"
    )

    @field_validator("file", mode="before")
    @classmethod
    def _existing_file(cls, value: Any, info: ValidationInfo) -> Path:
        if not isinstance(value, str) or not value.strip():
            _fail(f"must be the path of a file, got {shown(value)}")
        base = (info.context or {}).get("base_dir") or Path.cwd()
        path = (Path(base) / Path(value).expanduser()).resolve()
        if not path.is_file():
            _fail(f"no such file {shown(value)} (relative paths start at the scenario's folder)")
        return path


def _attachment_tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if not isinstance(value, dict):
        return None
    generated = "kind" in value or "size" in value
    if "file" in value:
        return None if generated else "FileAttachment"
    return "GeneratedAttachment" if generated else None


Attachment = Annotated[
    Annotated[GeneratedAttachment, Tag("GeneratedAttachment")]
    | Annotated[FileAttachment, Tag("FileAttachment")],
    Discriminator(
        _attachment_tag,
        custom_error_type="attachment_shape",
        custom_error_message="an attachment is {kind: photo, size: 2MB} or {file: path}",
    ),
]


class Message(_Section):
    """One message a user sends at a given time."""

    at: Duration = Field(description="when the sender clicks send, after the start, like 1min")
    sender: Address = Field(alias="from", description="the sending user's address")
    to: Recipients = Field(description="one address or a list of addresses")
    cc: Recipients = Field(default_factory=list, description="copy recipients")
    bcc: Recipients = Field(default_factory=list, description="blind copy recipients")
    subject: SubjectText = Field(default="", description="the Subject header")
    body: Text = Field(default="", description="the plain text")
    html: Text | None = Field(default=None, description="an HTML version of the text")
    attachments: Annotated[list[Attachment], BeforeValidator(_empty_if_null(list))] = Field(
        default_factory=list, description="attached files"
    )

    @property
    def recipients(self) -> list[str]:
        """Every envelope recipient: to, then cc, then bcc."""
        return [*self.to, *self.cc, *self.bcc]


#: The widest log-normal spread: e**10 (22,000 times) per standard deviation. Measured message
#: sizes spread by about e**1 to e**2; far wider, a draw overflows a float (e**710).
MAX_SIGMA = 10.0


class FixedSize(_Section):
    """Every draw is ``size`` bytes."""

    distribution: Literal["fixed"] = Field(default="fixed", description="fixed")
    size: ContentSize = Field(description="the size, like 20KB")


class LognormalSize(_Section):
    """Sizes drawn from a log-normal distribution: half are below ``median``."""

    distribution: Literal["lognormal"] = Field(default="lognormal", description="lognormal")
    median: PositiveContentSize = Field(description="the median size, like 20KB")
    sigma: Annotated[float, BeforeValidator(_number(0.0, MAX_SIGMA))] = Field(
        default=1.0, description="spread: the standard deviation of the size's natural logarithm"
    )
    max: PositiveContentSize | None = Field(
        default=None, description="largest size drawn (null: no limit)"
    )


class UniformSize(_Section):
    """Sizes drawn uniformly between ``min`` and ``max``."""

    distribution: Literal["uniform"] = Field(default="uniform", description="uniform")
    min: ContentSize = Field(description="the smallest size")
    max: PositiveContentSize = Field(description="the largest size")


_SIZE_TAGS = {"fixed": "FixedSize", "lognormal": "LognormalSize", "uniform": "UniformSize"}


def _size_tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if not isinstance(value, dict):
        return None
    if "distribution" in value:
        kind = value["distribution"]
        return _SIZE_TAGS.get(kind.lower()) if isinstance(kind, str) else None
    for key, tag in (("median", "LognormalSize"), ("min", "UniformSize"), ("size", "FixedSize")):
        if key in value:
            return tag
    return None


def _scalar_is_fixed(value: Any) -> Any:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return {"distribution": "fixed", "size": value}
    return value


SizeSpec = Annotated[
    Annotated[
        Annotated[FixedSize, Tag("FixedSize")]
        | Annotated[LognormalSize, Tag("LognormalSize")]
        | Annotated[UniformSize, Tag("UniformSize")],
        Discriminator(
            _size_tag,
            custom_error_type="size_shape",
            custom_error_message="a size is like 20KB or {distribution: lognormal, median: 20KB}",
        ),
    ],
    BeforeValidator(_scalar_is_fixed),
]


class TrafficGenerator(_Section):
    """Background mail: each sender sends messages at random (a Poisson process) at ``rate``."""

    rate: EventRate = Field(description="messages per sender, like 12/h")
    senders: list[Address] | None = Field(default=None, description="who sends (null: every user)")
    recipients: list[Address] | None = Field(
        default=None, description="who receives (null: every user but the sender)"
    )
    recipients_per_message: Annotated[int, BeforeValidator(_whole(1))] = Field(
        default=1, description="recipients of each message, drawn without repetition"
    )
    size: SizeSpec = Field(
        default_factory=lambda: LognormalSize(median=4000, sigma=1.0),
        description="size of the text of each message",
    )
    attachment_probability: Probability = Field(
        default=0.0, description="chance that a message has an attachment"
    )
    attachment_kind: AttachmentKind = Field(
        default="document", description="kind of the attachments"
    )
    attachment_size: SizeSpec = Field(
        default_factory=lambda: LognormalSize(median=300_000, sigma=1.0),
        description="size of each attachment",
    )
    start: Duration = Field(default=0.0, description="when the traffic starts")
    stop: PositiveDuration | None = Field(
        default=None, description="when it stops (null: at the end)"
    )
