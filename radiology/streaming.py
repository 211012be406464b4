"""Streaming responses that stay streamed under ASGI.

Django's ASGI handler drains a synchronous iterator into a list before sending anything
(`StreamingHttpResponse.__aiter__` in django/http/response.py), so a "streamed" study download or WADO-RS
retrieval would sit whole in memory under `serve`. Under ASGI we give Django an asynchronous iterator that pulls
the synchronous one a block at a time in Django's sync thread (where the view's database connection lives).
"""
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse

# Small pieces (multipart headers, line ends) are joined up to this size so that each hop to the sync thread
# carries a useful amount of data.
BLOCK_SIZE = 1 << 20


def streaming_response(request, chunks, **response_options):
    """A StreamingHttpResponse over the byte chunks of `chunks`, streamed under ASGI and WSGI alike."""
    if isinstance(request, ASGIRequest):
        return StreamingHttpResponse(_blocks_from_thread(iter(chunks)), **response_options)
    return StreamingHttpResponse(chunks, **response_options)


async def _blocks_from_thread(iterator):
    next_block = sync_to_async(_next_block, thread_sensitive=True)
    while block := await next_block(iterator):
        yield block


def _next_block(iterator):
    """Up to about BLOCK_SIZE bytes from `iterator`; b"" once it is exhausted."""
    pieces, size = [], 0
    for chunk in iterator:
        pieces.append(chunk)
        size += len(chunk)
        if size >= BLOCK_SIZE:
            break
    return b"".join(pieces)
