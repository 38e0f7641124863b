"""Deterministic completion text whose token count is known without a tokenizer.

Every word below is exactly one cl100k token in all four forms (`word`, ` word`, `Word`, ` Word`),
and `.` / `,` are single tokens too, so a completion built from them has exactly as many tokens as
pieces. The simulator can then report `completion_tokens` exactly while generating text in
microseconds (a slice of a fixed passage), and the guard's own counter agrees with it.
`tests/test_sim.py` re-checks the claim with tiktoken.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

WORDS: tuple[str, ...] = tuple(
    """the of and to in is it you that he was for on are with as his they be at one have this from or
    had by word but what some we can out other were all there when up use your how an each she which do
    their time if will way about many then them write would like so these her long make thing see two
    has look more day could go come did number sound no most people my over know water than call first
    who may down side been now find any new work part take get place made live where after back little
    only round man year show every good me give our under name very through just form sentence great
    think say help low line turn cause much mean before move right boy old too same tell does set three
    want air well also play small end put home read hand port large add even land here must big high
    such follow act why ask men change light kind off need house picture try us again animal point
    mother world near build self earth father head stand own page should country found answer school
    grow study still learn plant cover food sun four between state keep eye never last let thought city
    tree cross farm hard start story far sea draw left late run while press close night real life few
    north open next white children begin got walk example paper group always music those both mark
    often letter until river car care second book science eat room friend fish stop once base cut sure
    watch color face wood main plain girl young ready above ever red list though feel talk bird soon
    body dog family direct leave song measure door product black short class wind question complete
    ship area half rock order fire south problem piece pass since top whole king space best hour better
    true during five remember step early hold west ground interest reach fast sing listen six table
    travel less ten simple against pattern slow center love person money serve road map rain rule pull
    cold notice voice unit power town fine fly fall lead dark machine note wait plan figure star box
    field rest correct done drive front week final green quick develop warm free minute strong special
    mind clear tail fact street nothing course stay wheel full force blue object surface deep moon foot
    system busy test record common gold possible plane dry check game shape hot miss heat snow bring
    yes fill east paint language among""".split()
)

PASSAGE_TOKENS = 8192
MIN_TOKENS, MAX_TOKENS = 20, 300


def _build_passage(size: int) -> tuple[list[str], list[int]]:
    """A fixed passage as a list of one-token pieces, and the indices where sentences start."""
    rng = random.Random(20240601)
    pieces: list[str] = []
    starts: list[int] = []
    while len(pieces) < size:
        starts.append(len(pieces))
        length = rng.randint(6, 16)
        for i in range(length):
            word = rng.choice(WORDS)
            pieces.append(" " + (word.capitalize() if i == 0 else word))
            if 2 < i < length - 2 and rng.random() < 0.08:
                pieces.append(",")
        pieces.append(".")
    return pieces, starts


_PIECES, _STARTS = _build_passage(PASSAGE_TOKENS)
_LOOPED = _PIECES + _PIECES  # a slice of up to PASSAGE_TOKENS pieces never runs off the end


def request_digest(route: str, body: dict[str, Any], seed: int = 0) -> bytes:
    """A stable digest of what a request asks for. Streaming flags are left out so the streamed and
    the plain answer to the same question are the same text."""
    canonical = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    data = json.dumps([route, seed, canonical], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(data.encode(), digest_size=16).digest()


def target_length(digest: bytes) -> int:
    """How many tokens the model 'wants' to say before any max-tokens cut: 20..300."""
    return MIN_TOKENS + int.from_bytes(digest[:4], "little") % (MAX_TOKENS - MIN_TOKENS + 1)


def completion_pieces(digest: bytes, n: int) -> list[str]:
    """`n` one-token pieces starting at a sentence chosen by the digest; joined they read as text."""
    if n <= 0:
        return []
    n = min(n, PASSAGE_TOKENS)
    start = _STARTS[int.from_bytes(digest[4:8], "little") % len(_STARTS)]
    pieces = _LOOPED[start : start + n]
    pieces[0] = pieces[0].lstrip(" ")
    return pieces
