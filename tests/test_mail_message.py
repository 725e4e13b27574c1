"""Messages in 7-bit wire form: MIME layout, base64 cost, round trips, ids, dates, trace headers."""

from __future__ import annotations

import email
import email.policy
import random

import pytest

from mailsim.mail.message import (
    SIM_EPOCH,
    MailItem,
    add_missing_headers,
    add_received,
    addresses_of,
    attachment_from_bytes,
    compose,
    count_received,
    domain_of,
    extract_attachments,
    format_date,
    is_looping,
    make_message_id,
    read_message,
    received_header,
    seven_bit_problems,
    synthetic_attachment,
)


def _compose(**overrides: object) -> bytes:
    args: dict[str, object] = {
        "sender": "James <james@india.com>",
        "to": "Steve <steve@usa.com>",
        "subject": "Grammar book",
        "body": "Do you have a Grammar Book?\nWhat about Atlas?\n",
        "message_id": make_message_id("m1", "india.com"),
        "date_t": 0.0,
    }
    args.update(overrides)
    return compose(**args)  # type: ignore[arg-type]


def _assert_seven_bit(content: bytes) -> None:
    """Every octet below 128; lines end in CRLF only; no line over 998 octets + CRLF."""
    assert seven_bit_problems(content) == []
    assert all(octet < 128 for octet in content)
    assert content.count(b"\n") == content.count(b"\r\n")
    assert max(len(line) for line in content.split(b"\r\n")) <= 998


def test_plain_text_message_is_seven_bit_with_crlf() -> None:
    content = _compose()
    _assert_seven_bit(content)
    assert b"\r\nDo you have a Grammar Book?\r\nWhat about Atlas?\r\n" in content
    assert b"Content-Type: text/plain" in content


def test_non_ascii_text_and_subject_come_out_seven_bit_and_decode_back() -> None:
    body = "Grüße aus Indien! नमस्ते, Steve. Ça va?\n"
    content = _compose(subject="Grüße aus Indien", body=body)
    _assert_seven_bit(content)
    assert b"Content-Transfer-Encoding: quoted-printable" in content or b"base64" in content
    shown = read_message(content)
    assert shown.subject == "Grüße aus Indien"
    assert shown.text == body


def test_very_long_text_line_is_encoded_below_the_line_limit() -> None:
    body = "x" * 5000 + "\n"
    content = _compose(body=body)
    _assert_seven_bit(content)
    assert read_message(content).text == body


def test_html_alternative_makes_multipart_alternative() -> None:
    content = _compose(html="<p>Do you have a <b>Grammar Book</b>? Ünïcödé</p>\n")
    _assert_seven_bit(content)
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    shown = read_message(content)
    assert shown.html is not None and "Ünïcödé" in shown.html
    assert shown.text == "Do you have a Grammar Book?\nWhat about Atlas?\n"


def test_binary_attachments_travel_as_seven_bit_base64() -> None:
    rng = random.Random(7)
    files = [
        synthetic_attachment("photo", 30_000, rng),
        synthetic_attachment("video", 50_000, rng),
        synthetic_attachment("document", 10_000, rng),
        attachment_from_bytes(bytes(range(256)) * 4, "all-octets.bin"),
    ]
    content = _compose(html="<p>see attached</p>", attachments=files)
    _assert_seven_bit(content)
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/mixed"
    assert content.count(b"Content-Transfer-Encoding: base64") == 4


def test_attachment_bytes_round_trip_identical() -> None:
    rng = random.Random(11)
    files = [
        synthetic_attachment("photo", "300kB", rng),
        synthetic_attachment("video", "1MB", rng),
        attachment_from_bytes(b"\x00\xff\r\n\n\r" * 1000, "tricky.bin"),
        attachment_from_bytes("Notes with ümlauts\r\n".encode(), "notes.txt"),
    ]
    content = _compose(attachments=files)
    back = extract_attachments(content)
    assert [(a.filename, a.content_type) for a in back] == [
        (f.filename, f.content_type) for f in files
    ]
    for sent, received in zip(files, back, strict=True):
        assert received.data == sent.data


def test_one_megabyte_attachment_costs_about_37_percent_in_base64() -> None:
    data = random.Random(3).randbytes(1_000_000)
    content = _compose(attachments=[attachment_from_bytes(data, "blob.bin")])
    # Worked by hand: base64 writes 57 input octets as a 76-character line plus CRLF (78 octets).
    # 1,000,000 = 17,543 * 57 + 49, so 17,544 lines: 17,543 full lines of 78 octets = 1,368,354,
    # and a last line of 4 * ceil(49 / 3) = 68 characters + CRLF = 70. Total 1,368,424 octets,
    # 36.8 % more than the file.
    start = content.index(b'filename="blob.bin"\r\n\r\n') + len(b'filename="blob.bin"\r\n\r\n')
    # The CRLF before the next boundary line belongs to the boundary (RFC 2046 5.1.1).
    end = content.index(b"\r\n--=_mailsim", start)
    assert end - start == 1_368_424
    assert 1.36 < (end - start) / len(data) < 1.37
    # The rest (headers, text part, MIME boundaries) is small.
    assert 0 < len(content) - 1_368_424 < 1_000


def test_synthetic_attachment_is_deterministic_and_looks_like_its_kind() -> None:
    one = synthetic_attachment("photo", "2MB", random.Random(42))
    two = synthetic_attachment("photo", "2MB", random.Random(42))
    assert one == two
    assert one.size == 2_000_000
    assert one.content_type == "image/jpeg"
    assert one.filename.startswith("IMG_") and one.filename.endswith(".jpg")
    assert one.data.startswith(b"\xff\xd8\xff")  # JPEG start-of-image marker
    other = synthetic_attachment("photo", "2MB", random.Random(43))
    assert other.data != one.data
    video = synthetic_attachment("video", 1000, random.Random(1))
    assert (video.content_type, video.filename[-4:]) == ("video/mp4", ".mp4")
    assert synthetic_attachment("document", 3, random.Random(1)).data == b"%PD"  # size wins


def test_unknown_attachment_kind_says_what_is_allowed() -> None:
    with pytest.raises(ValueError, match=r"must be one of 'photo', 'video', 'document'.*'gif'"):
        synthetic_attachment("gif", 100, random.Random(1))


def test_same_inputs_give_the_same_bytes() -> None:
    files = [synthetic_attachment("photo", 5000, random.Random(9))]
    first = _compose(html="<p>x</p>", attachments=files)
    second = _compose(html="<p>x</p>", attachments=files)
    assert first == second


def test_message_id_is_derived_from_id_and_domain() -> None:
    assert make_message_id("m1", "india.com") == "<m1@india.com>"
    assert make_message_id("james 1/2 <x>", "india.com") == "<james-1/2--x-@india.com>"
    content = _compose(message_id=make_message_id("m42", "india.com"))
    assert b"\r\nMessage-ID: <m42@india.com>\r\n" in content


def test_date_comes_from_simulated_time_and_epoch() -> None:
    # t = 0 is the epoch, Monday 2026-01-05 09:00 UTC.
    assert format_date(0.0) == "Mon, 05 Jan 2026 09:00:00 +0000"
    # 1 day + 1 h + 1 min + 1.7 s later (fractions dropped): Tuesday 10:01:01.
    assert format_date(86400 + 3600 + 60 + 1.7) == "Tue, 06 Jan 2026 10:01:01 +0000"
    assert b"\r\nDate: Mon, 05 Jan 2026 09:00:00 +0000\r\n" in _compose()
    later = SIM_EPOCH.replace(year=2027)
    assert b"Date: Tue, 05 Jan 2027 09:00:00 +0000" in _compose(epoch=later)


def test_received_header_follows_rfc5321_4_4() -> None:
    stamp = received_header(
        helo="india.com",
        client_host="india-mail.india.com",
        client_ip="192.0.2.10",
        by_host="usa-mail.usa.com",
        queue_id="Q00002A",
        rcpt="steve@usa.com",
        t=61.0,
    )
    assert stamp == (
        b"Received: from india.com (india-mail.india.com [192.0.2.10])\r\n"
        b"\tby usa-mail.usa.com with ESMTP id Q00002A\r\n"
        b"\tfor <steve@usa.com>; Mon, 05 Jan 2026 09:01:01 +0000\r\n"
    )
    # Without reverse DNS and for several recipients: address literal only, no FOR clause.
    bare = received_header(
        helo="laptop",
        client_ip="198.51.100.7",
        by_host="india-mail.india.com",
        queue_id="Q1",
        t=0.0,
        protocol="ESMTPA",
    )
    assert bare.startswith(b"Received: from laptop ([198.51.100.7])\r\n\tby india-mail")
    assert b"with ESMTPA id Q1; Mon, 05 Jan 2026" in bare


def test_received_headers_are_prepended_and_counted() -> None:
    content = _compose(body="Received: this line is in the body and does not count\n")
    assert count_received(content) == 0
    stamped = add_received(
        content, helo="india.com", client_ip="192.0.2.10", by_host="usa-mail", queue_id="Q1", t=5
    )
    assert stamped.startswith(b"Received: from india.com ([192.0.2.10])")
    assert stamped.endswith(content)
    assert count_received(stamped) == 1
    parsed = read_message(stamped)
    assert len(parsed.received) == 1 and "by usa-mail with ESMTP id Q1" in parsed.received[0]


def test_loop_is_detected_at_100_received_headers() -> None:
    content = _compose()
    for hop in range(99):
        content = add_received(
            content, helo="a", client_ip="192.0.2.1", by_host=f"h{hop}", queue_id="Q", t=hop
        )
    assert count_received(content) == 99
    assert not is_looping(content)
    content = add_received(content, helo="a", client_ip="192.0.2.1", by_host="h", queue_id="Q", t=1)
    assert is_looping(content)  # RFC 5321 6.3: 100 hops


def test_mail_item_holds_envelope_and_size() -> None:
    content = _compose()
    item = MailItem("m1", "james@india.com", ["steve@usa.com", "bob@usa.com"], content)
    assert item.recipients == ("steve@usa.com", "bob@usa.com")
    assert item.size == len(content)
    bounce = MailItem("b1", "", ("james@india.com",), content)
    assert bounce.sender == ""
    assert item.with_recipients(["bob@usa.com"]).recipients == ("bob@usa.com",)
    with pytest.raises(ValueError, match="no recipients"):
        MailItem("m2", "james@india.com", (), content)


def test_seven_bit_problems_names_what_is_wrong() -> None:
    assert seven_bit_problems(b"ok\r\n") == []
    assert "0xe9" in seven_bit_problems("caf\u00e9\r\n".encode("latin-1"))[0]
    assert "bare CR or LF" in seven_bit_problems(b"one\ntwo\r\n")[0]
    assert "999 octets" in seven_bit_problems(b"x" * 999 + b"\r\n")[0]


def test_addresses_and_domains_for_the_envelope() -> None:
    assert addresses_of("Steve <steve@usa.com>, bob@usa.com", ["Steve <steve@usa.com>"]) == (
        "steve@usa.com",
        "bob@usa.com",
    )
    assert domain_of("Steve@USA.com") == "usa.com"
    assert domain_of("postmaster") == ""


def test_a_message_typed_without_headers_keeps_its_text_as_body_when_stamped() -> None:
    # The tutorial types two text lines after DATA and no header: the stamp must not turn the
    # first of them into a header line of its own.
    stamped = add_received(
        b"Do you have a Grammar Book?\r\nWhat about Atlas?\r\n",
        helo="USA.com",
        client_ip="198.51.100.1",
        by_host="India.com",
        queue_id="Q1",
        t=0,
        protocol="SMTP",
    )
    parsed = read_message(stamped)
    assert parsed.text.startswith("Do you have a Grammar Book?")
    assert b"with SMTP id Q1" in stamped


def test_the_with_keyword_follows_rfc3848() -> None:
    from mailsim.mail.message import with_protocol

    assert with_protocol(extended=False, authenticated=False) == "SMTP"
    assert with_protocol(extended=True, authenticated=False) == "ESMTP"
    assert with_protocol(extended=True, authenticated=True) == "ESMTPA"  # no TLS: never ...S...


def test_missing_date_and_message_id_are_added_at_the_end_of_the_header() -> None:
    content = b"From: james@india.com\r\nSubject: Books\r\n\r\nAtlas?\r\n"
    done = add_missing_headers(content, t=60, message_id="Q1@india.com")
    assert done == (
        b"From: james@india.com\r\nSubject: Books\r\n"
        b"Date: Mon, 05 Jan 2026 09:01:00 +0000\r\nMessage-ID: <Q1@india.com>\r\n\r\nAtlas?\r\n"
    )


def test_headers_already_there_are_kept_and_not_repeated() -> None:
    content = b"Date: Tue, 1 Jan 2030 00:00:00 +0000\r\nmessage-id: <x@y>\r\n\r\nbody\r\n"
    assert add_missing_headers(content, t=0, message_id="Q1@h") == content
    dated = b"Date: Tue, 1 Jan 2030 00:00:00 +0000\r\n\r\nbody\r\n"
    assert add_missing_headers(dated, t=0, message_id="Q1@h") == (
        b"Date: Tue, 1 Jan 2030 00:00:00 +0000\r\nMessage-ID: <Q1@h>\r\n\r\nbody\r\n"
    )


def test_a_message_typed_without_a_header_gets_one() -> None:
    done = add_missing_headers(b"Do you have a Grammar Book?\r\n", t=0, message_id="Q1@h")
    assert done == (
        b"Date: Mon, 05 Jan 2026 09:00:00 +0000\r\nMessage-ID: <Q1@h>\r\n\r\n"
        b"Do you have a Grammar Book?\r\n"
    )
