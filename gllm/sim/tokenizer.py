"""The simulated tokenizer: words and single punctuation marks, with stable integer ids.

A token is a run of word characters (`\\w+`) or one character that is neither a word character nor
whitespace; whitespace separates tokens and is not a token. So "Hello, world!" is 4 tokens:
`Hello` `,` `world` `!`. A token's id is the CRC-32 of its UTF-8 text: the same in every process, so block
hashes of the prefix cache are stable too. Token id arrays sent as prompts are used as they are.
"""

from __future__ import annotations

import re
import zlib

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Split `text` into token strings."""
    return _TOKEN.findall(text)


def token_id(token: str) -> int:
    """The stable id of one token string."""
    return zlib.crc32(token.encode())


def encode(text: str) -> list[int]:
    """Token ids of `text`."""
    return [zlib.crc32(token.encode()) for token in _TOKEN.findall(text)]


def count_tokens(text: str) -> int:
    """Number of tokens in `text`."""
    return len(_TOKEN.findall(text))
