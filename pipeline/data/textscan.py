"""Minimal LilyPond source scanner: find ``\\score`` blocks and their ``\\layout``/``\\midi`` parts.

Comments (``% ...`` and ``%{ ... %}``) and strings are skipped while matching braces, so a
commented-out ``\\midi`` does not count (convert-ly is known to rewrite such comments).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"\\[A-Za-z]+")


def code_mask(text: str) -> list[bool]:
    """For each character: True if it is LilyPond code (not inside a comment or a string)."""
    mask = [True] * len(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "%" and text.startswith("%{", i):
            j = text.find("%}", i + 2)
            j = n if j < 0 else j + 2
            mask[i:j] = [False] * (j - i)
            i = j
        elif c == "%":
            j = text.find("\n", i)
            j = n if j < 0 else j
            mask[i:j] = [False] * (j - i)
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            mask[i:j] = [False] * (j - i)
            i = j
        else:
            i += 1
    return mask


@dataclass
class Block:
    """A ``\\keyword { ... }`` block: ``start`` at the backslash, ``end`` one past the closing brace."""
    keyword: str
    start: int
    open_brace: int
    end: int
    children: list["Block"] = field(default_factory=list)


def find_blocks(text: str, keywords=("score", "layout", "midi", "book", "bookpart")) -> list[Block]:
    """Top-level tree of the given ``\\keyword { }`` blocks (other braces are walked through)."""
    mask = code_mask(text)
    root: list[Block] = []
    stack: list[tuple[Block | None, int]] = []  # (block opened at this brace, depth marker)
    pending: tuple[str, int] | None = None
    i, n = 0, len(text)
    while i < n:
        if not mask[i]:
            i += 1
            continue
        c = text[i]
        if c == "\\":
            m = _TOKEN.match(text, i)
            if m:
                word = m.group()[1:]
                pending = (word, i) if word in keywords else None
                i = m.end()
                continue
        elif c == "{":
            block = None
            if pending is not None:
                block = Block(pending[0], pending[1], i, -1)
                parent = next((b for b, _ in reversed(stack) if b is not None), None)
                (parent.children if parent else root).append(block)
            stack.append((block, i))
            pending = None
        elif c == "}":
            if stack:
                block, _ = stack.pop()
                if block is not None:
                    block.end = i + 1
        elif not c.isspace():
            pending = None
        i += 1
    return root


def iter_scores(blocks: list[Block]):
    """All ``\\score`` blocks, depth-first, not descending into a score."""
    for b in blocks:
        if b.keyword == "score":
            yield b
        else:
            yield from iter_scores(b.children)
