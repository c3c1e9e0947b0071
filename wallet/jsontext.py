"""JSON text as ``json.dumps`` writes it, with the encoder built once rather than on every call."""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any


def encoder_once(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """``encoder.encode``, with the C encoder it would build on every call (and its circular
    reference markers) built once. What it encodes in this service is a tree (a record, a request
    body as parsed, an outcome, a list of ids), never a structure that contains itself, so the
    output is the same."""
    if c_make_encoder is None or encoder.indent is not None:  # a Python without _json: the plain encoder
        return encoder.encode
    escape = encode_basestring_ascii if encoder.ensure_ascii else encode_basestring
    make = c_make_encoder(
        None,
        encoder.default,
        escape,
        None,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )

    def encode(value: Any) -> str:
        return "".join(make(value, 0))

    return encode
