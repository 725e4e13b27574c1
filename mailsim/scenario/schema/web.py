"""The web: servers that hand out files over HTTP, and the downloads that pull them.

The tutorial's last comparison, HTTP pulls and SMTP pushes, needs both in one world: James's
server pushes mail to Steve's, and Steve's computer pulls files from a web server.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator

from mailsim.scenario.schema.fields import (
    AttachmentKind,
    Duration,
    NodeName,
    PositiveSize,
    Text,
    _empty_if_null,
    _Section,
)


class WebFile(_Section):
    """A file a web server hands out: made-up content of a kind and a size, at a URL path."""

    path: Text = Field(description="its URL path, like /atlas.jpg")
    kind: AttachmentKind = Field(description="photo, video, document or file")
    size: PositiveSize = Field(description="its size, like 2MB")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or " " in value:
            raise ValueError(
                f"must be a URL path starting with '/', like /atlas.jpg, got {value!r}"
            )
        return value


class WebServerSpec(_Section):
    """A node that runs an HTTP/1.1 server on port 80."""

    node: NodeName = Field(description="the node that serves the files")
    files: Annotated[list[WebFile], Field(min_length=1)] = Field(description="the files it serves")


class DownloadSpec(_Section):
    """Someone at a node fetches files from a web server, as a browser does."""

    at: Duration = Field(description="when the download starts")
    client: NodeName = Field(alias="from", description="the node that fetches the files")
    server: NodeName = Field(description="the web server's node")
    paths: Annotated[list[Text], Field(min_length=1)] = Field(
        description="the URL paths fetched, in order"
    )
    connection: Literal["persistent", "pipelined", "per-file"] = Field(
        default="persistent",
        description="one connection, one request at a time; one connection, all requests at "
        "once; or a new connection per file",
    )


WebServers = Annotated[list[WebServerSpec], BeforeValidator(_empty_if_null(list))]
Downloads = Annotated[list[DownloadSpec], BeforeValidator(_empty_if_null(list))]
