"""Rendering is pure: golden files for the messages, properties for the Telegram limits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.sandbox import parse_telegram_html, utf16_len
from bot.telegram import callbacks, render
from index.answer import Answer, Excerpt
from index.articles import Article, strip_controls
from tests.conftest import Golden

SEPARATOR = "\n----- next message -----\n"


def excerpt(
    text: str, title: str = "Title", url: str = "https://n.example/a", **kw: object
) -> Excerpt:
    fields = {"published_at": "2025-03-05T09:30:00+00:00", "score": 0.7, "start": 0}
    fields.update(kw)
    return Excerpt(url=url, title=title, text=text, end=len(text), article_key="k" * 40, **fields)  # type: ignore[arg-type]


TRICKY = excerpt(
    'Officials said "1 < 2 & 3 > 2" — <script>alert(1)</script> &amp; AT&T\'s <b>bold</b> claim.',
    title='Q&A: <i>Gaza</i> talks & "truce"',
    url='https://n.example/2025/03/05/q-a?x=1&y="2"',
    answer_span=(15, 27),
)
PLAIN = excerpt(
    "Witkoff urged Israel to uphold the ceasefire and allow aid trucks through the crossings.",
    title="Mediators step up efforts to keep Gaza truce alive",
    url="https://sample.coverbot.example/2025/03/05/mediators/",
)
UNDATED = excerpt(
    "ما هو الخبر؟ 😀 emoji and RTL.\n\nA second paragraph.",
    published_at=None,
    answer_span=(31, 50),
)


def check_parts(parts: list[str]) -> list[str]:
    """Every part parses as Telegram HTML and fits; returns the visible texts."""
    texts = []
    for part in parts:
        plain, _ = parse_telegram_html(part)
        assert 0 < utf16_len(plain) <= render.MAX_UNITS
        texts.append(plain)
    return texts


@settings(max_examples=200)
@given(
    value=st.text(max_size=300),
    a=st.integers(min_value=0, max_value=320),
    b=st.integers(min_value=0, max_value=320),
)
def test_marked_answer_keeps_the_text_verbatim(value: str, a: int, b: int) -> None:
    span = (min(a, b), max(a, b))
    block = render.marked(value, 0, span)
    plain, _ = parse_telegram_html(block.html)
    assert plain == strip_controls(value).encode("utf-8", "replace").decode("utf-8")
    assert block.units == utf16_len(plain)


def test_the_mark_stays_on_its_sentence_when_controls_are_dropped() -> None:
    body = "First\u200f one.\x07 The answer is 42."
    start = body.index("The")
    block = render.excerpt_blocks(excerpt(body, answer_span=(start, len(body))))[0]
    assert "<b>The answer is 42.</b>" in block.html


def test_answer_golden(golden: Golden) -> None:
    answer = Answer("q", True, (PLAIN, TRICKY, UNDATED), 0.7)
    parts = render.answer_parts(answer, 0, 3)
    check_parts(parts)
    golden.check("answer_three_excerpts.html", SEPARATOR.join(parts) + "\n")
    keyboard = render.answer_keyboard("abc123", 0, 2, 3)
    golden.check("answer_keyboard.txt", repr(keyboard) + "\n")


def test_other_messages_golden(golden: Golden) -> None:
    articles = [
        Article(
            url="https://n.example/1",
            title="Egypt & Qatar <press> on",
            body="b",
            published_at="2025-04-22T15:10:00+00:00",
        ),
        Article(url="https://n.example/2", title="Undated story", body="b"),
    ]
    messages = {
        "help": render.help_message("coverbot_test_bot", 16, "2025-04-30T17:55:00+00:00"),
        "help_one_article_no_examples": render.help_message(
            "coverbot_test_bot", 1, None, has_examples=False
        ),
        "language": render.language_message("Arabic"),
        "latest": SEPARATOR.join(render.latest_parts(articles)),
        "decline": render.decline_message(),
        "not_a_question": render.not_a_question_message(),
        "ask_usage": render.ask_usage_message(),
        "too_long": render.question_too_long_message(500),
        "error_report": render.error_report(
            "ValueError in update 7: bad <thing>", "Traceback\n  x & y", 2
        ),
    }
    for text in messages.values():
        check_parts([text])
    golden.check("messages.html", "".join(f"== {k}\n{v}\n" for k, v in messages.items()))


def test_excerpt_text_is_verbatim_and_links_work() -> None:
    [part] = render.answer_parts(Answer("q", True, (TRICKY,), 0.7))
    plain, entities = parse_telegram_html(part)
    assert TRICKY.text in plain
    links = [e for e in entities if e["type"] == "text_link"]
    assert links[0]["url"] == TRICKY.url
    assert any(e["type"] == "blockquote" for e in entities)


def test_pages_and_keyboards() -> None:
    answer = Answer("q", True, (PLAIN, TRICKY, UNDATED), 0.7)
    first = check_parts(render.answer_parts(answer, 0, 2))
    second = check_parts(render.answer_parts(answer, 2, 2))
    assert PLAIN.text in first[0] and UNDATED.text not in "".join(first)
    assert UNDATED.text in "".join(second)
    keyboard = render.answer_keyboard("abc", 0, 2, 3)
    assert keyboard[0][0] == render.Button("More (1)", "m:abc:2")
    assert render.without_more(keyboard) == keyboard[1:]
    [last_page] = render.answer_keyboard("abc", 2, 1, 3)
    assert [b.data for b in last_page] == ["f:abc:2:h", "f:abc:2:w"]
    for row in keyboard:
        for button in row:
            assert len(button.data.encode()) <= callbacks.MAX_CALLBACK_BYTES
            assert callbacks.parse_press(button.data) is not None


def test_parse_press_rejects_junk() -> None:
    assert callbacks.parse_press("m:abc:2") == callbacks.MorePress("abc", 2)
    assert callbacks.parse_press("f:abc:0:w") == callbacks.FeedbackPress(
        "abc", 0, callbacks.WRONG_QUOTE
    )
    assert callbacks.parse_press("x:1") == callbacks.ExamplePress(1)
    for junk in (None, "", "m:", "m:abc", "f:abc:0:z", "x:-1", "m:a b:1", "m:abc:99999", "zzz"):
        assert callbacks.parse_press(junk) is None


def test_plain_fallback_spells_out_links() -> None:
    [part] = render.answer_parts(Answer("q", True, (TRICKY,), 0.7))
    [plain] = render.plain_parts(part)
    assert TRICKY.url in plain and TRICKY.text in plain and "<b>" in plain  # the excerpt's own
    assert "<a href" not in plain


def test_inline_results_are_single_valid_messages() -> None:
    long = excerpt("word " * 2000)
    results = render.inline_results(Answer("q", True, (PLAIN, long), 0.7))
    assert len({r.id for r in results}) == 2
    check_parts([r.html for r in results])
    assert render.inline_results(Answer("q", False)) == []


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=12_000), st.text(max_size=400), st.integers(0, 3))
def test_every_part_is_valid_telegram_html_under_the_limit(text: str, title: str, n: int) -> None:
    """Whatever the excerpt holds (<, &, quotes, emoji, 12,000 characters), every part parses
    and fits, and the parts together carry the excerpt verbatim (less invisible controls,
    which imports strip and rendering drops from text stored before)."""
    excerpts = tuple(
        excerpt(text, title=title, url=f'https://n.example/{i}?a=1&b="') for i in range(n + 1)
    )
    parts = render.answer_parts(Answer("q", True, excerpts, 0.5), 0, n + 1)
    plain = "".join(check_parts(parts))
    assert "".join(strip_controls(text).split()) in "".join(plain.split())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=9000), st.integers(2, 5000))
def test_split_text_covers_the_text(text: str, limit: int) -> None:
    pieces = render.split_text(text, limit)
    assert "".join(pieces) == text
    assert all(utf16_len(p) <= limit for p in pieces)


def test_bidi_controls_stored_before_never_reach_readers() -> None:
    # #12 item 12: "Invoice \u202efdp.exe" from a source reached readers in headlines and
    # excerpts; text stored before imports stripped it is cleaned on the way out too.
    hostile = excerpt("Pay \u2066now\u2069 or \u200dlater.", title="Invoice \u202efdp.exe")
    answer = Answer("q", True, [hostile])
    rendered = "".join(render.answer_parts(answer))
    for control in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200c\u200d":
        assert control not in rendered
    assert "Invoice fdp.exe" in rendered and "Pay now or later." in rendered
