"""The product's one codec: the Confluent wire format against the schema registry (see schemas.confluent).

`Codec` is `schemas.confluent.ConfluentCodec`; no other framing (Avro single-object encoding included) is
accepted. This module keeps the names the rest of the product imports.
"""

from __future__ import annotations

from schemas.confluent import (
    HEADER_SIZE,
    MAGIC,
    InvalidPayload,
    NotPrepared,
    UnknownSchemaId,
    codec_for,
    field_errors,
    frame,
    schema_id_of,
    subject_name,
)
from schemas.confluent import ConfluentCodec as Codec

__all__ = ["HEADER_SIZE", "MAGIC", "Codec", "InvalidPayload", "NotPrepared", "UnknownSchemaId", "codec_for",
           "field_errors", "frame", "schema_id_of", "subject_name"]
