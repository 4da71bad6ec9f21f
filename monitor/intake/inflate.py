"""Response bodies decoded as they stream in, within a byte budget: gzip, deflate (zlib or
raw, as some servers send it), identity. The size cap applies to decompressed bytes with
bounded memory: a 50 KB gzip bomb stops at the cap, never allocating more.
"""

from __future__ import annotations

import zlib

import httpx

from monitor.errors import FetchError

__all__ = ["Inflater", "content_encoding"]

# Bytes inflated per zlib call. A gzip bomb inflates a thousandfold: one 64 KB network read
# would otherwise come out as the whole budget in one piece, copied twice more on its way.
PIECE_BYTES = 256 * 1024


class Inflater:
    """Streaming gzip/deflate/identity decoder that never emits more than a byte budget."""

    def __init__(self, encoding: str, limit: int, where: str) -> None:
        self.encoding = encoding
        self.limit = limit
        self.where = where
        self.total = 0
        self._raw_fallback = encoding == "deflate"
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else 32 + zlib.MAX_WBITS
        self._z = zlib.decompressobj(wbits) if encoding != "identity" else None
        self._member_done = False  # a complete gzip member was decoded
        self._trailer_ignored = False

    def feed(self, data: bytes, out: list[bytes]) -> None:
        """Decode one raw chunk onto `out` in pieces of at most PIECE_BYTES; raise too_large
        as soon as the budget is exceeded (the piece over it is never kept)."""
        if self._z is None:
            out.append(self._count(data))
            return
        pending = data
        full = False  # the last piece filled its size: zlib may hold more output
        while (pending or full) and not self._trailer_ignored:
            chunk = self._inflate(pending)
            full = len(chunk) == PIECE_BYTES
            if chunk:
                out.append(self._count(chunk))
            pending = self._z.unconsumed_tail
            if self._z.eof and self._z.unused_data:  # concatenated gzip members
                self._member_done = True
                pending = self._z.unused_data
                self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
            elif not chunk:
                break

    def _inflate(self, data: bytes) -> bytes:
        """Inflate one piece (at most budget+1 bytes); retry raw deflate for servers that
        send it."""
        assert self._z is not None
        try:
            chunk = self._z.decompress(data, min(self.limit - self.total + 1, PIECE_BYTES))
        except zlib.error as exc:
            if self._member_done:
                # Zero padding or junk after a complete member: browsers and httpx ignore it.
                self._trailer_ignored = True
                return b""
            if not self._raw_fallback:
                raise FetchError(
                    "decode", f"corrupt {self.encoding} body from {self.where}"
                ) from exc
            self._raw_fallback = False
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._inflate(data)
        self._raw_fallback = False
        return chunk

    def _count(self, data: bytes) -> bytes:
        """Add to the running total and stop at the cap."""
        self.total += len(data)
        if self.total > self.limit:
            raise FetchError("too_large", f"body of {self.where} exceeds {self.limit} bytes")
        return data


def content_encoding(response: httpx.Response, where: str) -> str:
    """The single supported content coding of a response, or an unsupported_encoding error."""
    codings = [
        c.strip().lower()
        for c in response.headers.get_list("content-encoding", split_commas=True)
        if c.strip() and c.strip().lower() != "identity"
    ]
    if not codings:
        return "identity"
    if len(codings) == 1 and codings[0] in {"gzip", "x-gzip", "deflate"}:
        return "gzip" if codings[0] == "x-gzip" else codings[0]
    # brotli is not installed and never advertised; a server sending it anyway is refused.
    raise FetchError(
        "unsupported_encoding", f"unsupported Content-Encoding {','.join(codings)} from {where}"
    )
