"""Pure clean-up of raw entries: canonical URLs, plain text, stable ids and hashes."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from monitor.domain import Entry, RawEntry

__all__ = ["canonical_url", "html_to_text", "normalize_entry", "title_key"]

SUMMARY_MAX_CHARS = 2000
TITLE_MAX_CHARS = 500
FALLBACK_TITLE_WORDS = 12
MAX_FUTURE = timedelta(days=2)
EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)

_TRACKING_EXACT = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "yclid",
        "igshid",
        "_ga",
        "at_medium",
        "at_campaign",
        "at_custom1",
        "at_custom2",
        "at_custom3",
        "at_custom4",
        "at_link",
        "ocid",
        "cmpid",
        "s_cid",
        "xtor",
        "ref",
        "ref_src",
        "ref_url",
        "referrer",
        "__twitter_impression",
    }
)
_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "hsa_")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_BING_HOSTS = {"www.bing.com", "bing.com", "cc.bingj.com"}
_SPACE = re.compile(r"\s+")
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")
_NOT_WORD = re.compile(r"[^\w\s]", re.UNICODE)
_BLOCK_TAGS = frozenset(
    {"p", "br", "div", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6"}
    | {"blockquote", "section", "article", "header", "footer", "table", "hr", "figure"}
)
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title"})


def _is_tracking(key: str) -> bool:
    """True for query keys that only track the reader."""
    k = key.lower()
    return k in _TRACKING_EXACT or k.startswith(_TRACKING_PREFIXES)


def _unwrap_bing(parts: tuple[str, str, str, str, str]) -> str | None:
    """The publisher URL inside a Bing News apiclick.aspx link, if this is one."""
    scheme, host, path, query, _ = parts
    if host not in _BING_HOSTS or not path.lower().endswith("/apiclick.aspx"):
        return None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.lower() == "url" and value.lower().startswith(("http://", "https://")):
            return value
    return None


def canonical_url(url: str | None) -> str | None:
    """A stable form of an article URL for dedup; None when it is not an http(s) URL."""
    if not url:
        return None
    url = html.unescape(url.strip())
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    inner = _unwrap_bing((scheme, host, parts.path, parts.query, ""))
    if inner is not None and inner != url:
        return canonical_url(inner)
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if host == "news.google.com":
        return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    if not parts.query:
        return urlunsplit((scheme, netloc, parts.path or "/", "", ""))
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    ]
    return urlunsplit((scheme, netloc, parts.path or "/", urlencode(sorted(query)), ""))


class _TextExtractor(HTMLParser):
    """Collects text outside script/style, with breaks at block elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def fold_space(text: str) -> str:
    """Collapse runs of whitespace (including NBSP) to one space and trim."""
    return _SPACE.sub(" ", text.replace("\u00a0", " ")).strip()


def html_to_text(markup: str | None) -> str:
    """Plain text of an HTML fragment: tags and scripts dropped, entities decoded, spaces folded."""
    if not markup:
        return ""
    if "<" not in markup and "&" not in markup:
        # Plain text (most titles, many summaries): what the HTML parser would return anyway,
        # for a tenth of the cost.
        return fold_space(_INVISIBLE.sub("", markup))
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts)
    if "&" in text:  # double-encoded entities such as &amp;aacute; survive one decoding
        text = html.unescape(text)
    text = _INVISIBLE.sub("", text)
    return fold_space(text)


def _cap(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` chars, at a word boundary when one is near."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]  # room for the ellipsis
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip() + "…"


def content_hash(title: str, summary: str) -> str:
    """sha256 of casefolded, whitespace-folded title and summary."""
    return _hash_folded(fold_space(title), fold_space(summary))


def _hash_folded(title: str, summary: str) -> str:
    """content_hash of a title and summary whose whitespace is folded already."""
    basis = title.casefold() + "\n" + summary.casefold()
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()


def title_key(title: str) -> str:
    """Casefolded title without punctuation, for cross-feed dedup (Google News links differ)."""
    text = unicodedata.normalize("NFKC", html.unescape(title)).casefold()
    return fold_space(_NOT_WORD.sub(" ", text.replace("_", " ")))


def _published(value: datetime | None, fetched_at: datetime) -> datetime:
    """The entry date in UTC, or the fetch time when missing or absurd."""
    if value is None:
        return fetched_at
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    if value > fetched_at + MAX_FUTURE or value < EARLIEST:
        return fetched_at
    return value


def _fallback_title(summary: str) -> str:
    """A title made of the summary's first words, for entries without one."""
    words = summary.split()
    if not words:
        return ""
    title = " ".join(words[:FALLBACK_TITLE_WORDS])
    return title + ("…" if len(words) > FALLBACK_TITLE_WORDS else "")


GUID_MAX_CHARS = 1000  # a feed's GUID, or one dedup qualifies with the entry's link

# A language tag as feeds write it: "vi", "en-US", "zh_Hant_TW", "EN".
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")
LANGUAGE_MAX_CHARS = 8  # the column's width: a primary tag and a region or script fit


def language_tag(value: str | None) -> str | None:
    """A feed's language value as a short lower-case tag ("en-us"); None when it is no tag.

    Feeds write anything here ("Vietnamese", "zh-Hant-TW", "en_GB"): trailing subtags are
    dropped until the tag fits, and words that are no tag are ignored rather than stored.
    """
    if not value:
        return None
    tag = value.strip().lower().replace("_", "-")
    if not _LANGUAGE_TAG.fullmatch(tag):
        return None
    while len(tag) > LANGUAGE_MAX_CHARS:
        tag = tag.rsplit("-", 1)[0]
    return tag


def normalize_entry(raw: RawEntry, *, fetched_at: datetime, feed_language: str | None) -> Entry:
    """Clean one raw entry into an Entry with a stable guid and content hash."""
    fetched_at = fetched_at.astimezone(UTC) if fetched_at.tzinfo else fetched_at.replace(tzinfo=UTC)
    summary = _cap(html_to_text(raw.summary_html), SUMMARY_MAX_CHARS)
    title = _cap(html_to_text(raw.title), TITLE_MAX_CHARS) or _fallback_title(summary)
    url = canonical_url(raw.link)
    digest = _hash_folded(title, summary)  # html_to_text folded both
    guid = fold_space(raw.guid)[:GUID_MAX_CHARS] if raw.guid and raw.guid.strip() else None
    return Entry(
        guid=guid or url or f"sha256:{digest}",
        url=url,
        title=title,
        summary=summary,
        published=_published(raw.published, fetched_at),
        content_hash=digest,
        language=language_tag(raw.language) or language_tag(feed_language),
        author=fold_space(raw.author)[:200] if raw.author and raw.author.strip() else None,
    )
