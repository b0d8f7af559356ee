"""The one place the people's pages turn Kafka bytes into records and back.

Every encode and decode in `consumers/` goes through this module, so the wire format (Avro single-object
encoding before, the Confluent wire format with a schema registry now) is one place: `make_codec` builds the
product's codec, and `prepare`, `decode` and `encode` speak to either kind (a registry-backed codec needs
its writer schemas registered up front, may fetch a reader's unknown schema id, and encodes per topic).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from schemas import codec as product_codec
from schemas.models import Record

__all__ = ["RecordCodec", "decode", "encode", "make_codec", "prepare"]

RecordCodec = Any  # schemas.codec.Codec, or a test double with decode(bytes) and encode(record[, topic])
Topics = Mapping[str, Iterable[type[Record]]]


async def make_codec(registry_url: str, topics: Topics) -> RecordCodec:
    """The product's codec, ready to encode to and decode from these topics."""
    codec_for = getattr(product_codec, "codec_for", None)
    if codec_for is not None:
        return await codec_for(registry_url, topics)
    return product_codec.Codec()


async def prepare(codec: RecordCodec, topics: Topics) -> None:
    """Register (or find) the writer schemas of these topics' records, when the codec has a registry."""
    prepare_ = getattr(codec, "prepare", None)
    if prepare_ is not None:
        await prepare_(topics)


async def decode(codec: RecordCodec, data: bytes | None) -> Record:
    """Decode a Kafka value (fetching an unknown writer schema first, when the codec can)."""
    decode_async = getattr(codec, "decode_async", None)
    record = await decode_async(data) if decode_async is not None else codec.decode(data)
    assert isinstance(record, Record)
    return record


def encode(codec: RecordCodec, record: Record, topic: str) -> bytes:
    """Encode a record for a topic."""
    if "topic" in inspect.signature(codec.encode).parameters:
        return bytes(codec.encode(record, topic))
    return bytes(codec.encode(record))


async def close(codec: RecordCodec) -> None:
    """Release the codec's registry client, if it has one."""
    aclose = getattr(codec, "aclose", None)
    if aclose is not None:
        await aclose()
