"""Streamed responses stay streamed under ASGI: Django would otherwise drain a synchronous iterator into memory."""
import pytest
from django.test import AsyncRequestFactory, RequestFactory

from radiology.streaming import BLOCK_SIZE, streaming_response


class CountingChunks:
    """An iterator of 1 MiB chunks that records how many it has handed out."""

    def __init__(self, count):
        self.count, self.produced = count, 0

    def __iter__(self):
        for _ in range(self.count):
            self.produced += 1
            yield b"x" * BLOCK_SIZE


@pytest.mark.asyncio
async def test_under_asgi_chunks_are_pulled_one_block_at_a_time():
    chunks = CountingChunks(10)
    response = streaming_response(AsyncRequestFactory().get("/"), chunks, content_type="application/zip")
    stream = aiter(response)
    first = await anext(stream)
    assert len(first) == BLOCK_SIZE
    assert chunks.produced == 1, "the rest of the content must not be read ahead"
    rest = [block async for block in stream]
    assert chunks.produced == 10 and len(rest) == 9


@pytest.mark.asyncio
async def test_small_pieces_are_joined_into_blocks():
    pieces = [b"ab"] * 5
    response = streaming_response(AsyncRequestFactory().get("/"), pieces, content_type="text/plain")
    assert [block async for block in response] == [b"ababababab"]


def test_under_wsgi_the_iterator_is_used_as_it_is():
    chunks = CountingChunks(3)
    response = streaming_response(RequestFactory().get("/"), chunks, content_type="application/zip")
    assert next(iter(response)) == b"x" * BLOCK_SIZE
    assert chunks.produced == 1
