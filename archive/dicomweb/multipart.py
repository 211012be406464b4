"""Streamed `multipart/related` responses (RFC 2387, PS3.18 8.7.3.3.2): each part is written as it is produced,
so a whole study never sits in memory."""
import secrets

from radiology.streaming import streaming_response

CHUNK_SIZE = 1 << 20


class Part:
    """One body part: its media type, optional Content-Location, and its content as an iterable of bytes."""

    def __init__(self, content_type, chunks, location=""):
        self.content_type = content_type
        self.chunks = chunks
        self.location = location


def new_boundary():
    # RFC 2046 5.1.1: a boundary that cannot occur in the content; 32 random hex digits make that practical.
    return f"dicomweb-{secrets.token_hex(16)}"


def multipart_body(parts, boundary):
    """Generate the bytes of a multipart body from an iterable of Part objects."""
    delimiter = f"--{boundary}".encode("ascii")
    for part in parts:
        headers = [f"Content-Type: {part.content_type}"]
        if part.location:
            headers.append(f"Content-Location: {part.location}")
        yield delimiter + b"\r\n" + "\r\n".join(headers).encode("ascii") + b"\r\n\r\n"
        for chunk in part.chunks:
            if chunk:
                yield chunk
        yield b"\r\n"
    yield delimiter + b"--\r\n"


def multipart_response(request, parts, part_type, transfer_syntax="", status=200):
    """A streamed `multipart/related; type="<part_type>"` response over `parts` (an iterable of Part)."""
    boundary = new_boundary()
    content_type = f'multipart/related; type="{part_type}"; boundary={boundary}'
    if transfer_syntax:
        content_type += f"; transfer-syntax={transfer_syntax}"
    return streaming_response(request, multipart_body(parts, boundary), content_type=content_type, status=status)


def file_chunks(opener, chunk_size=CHUNK_SIZE):
    """Read a file in chunks, opening it only when the first chunk is wanted (`opener` returns a binary file)."""
    with opener() as source:
        while chunk := source.read(chunk_size):
            yield chunk
