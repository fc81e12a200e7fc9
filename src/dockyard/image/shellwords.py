"""Dockerfile word rules: splitting an instruction's arguments and expanding variables.

Two steps, as in Docker's builder: `split_words` cuts on whitespace outside quotes and keeps
quotes and escapes in the words; `expand` then removes quotes and escapes and substitutes
`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}`, `${VAR-default}`, `${VAR+alt}`, `${VAR?msg}`.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import InvalidArgument

ESCAPE = "\\"


def split_words(text: str) -> list[str]:
    """Whitespace-separated words; quoted whitespace stays inside its word."""
    words: list[str] = []
    word, quote, in_word, blank_ok = "", "", False, False
    i = 0
    while i < len(text):
        ch = text[i]
        if not in_word and not quote:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == ESCAPE and quote != "'":
                if i + 1 == len(text):
                    break  # a trailing escape is dropped
                word += ch
                i += 1
                ch = text[i]
            word += ch
        elif ch.isspace():
            if blank_ok or word:
                words.append(word)
            word, in_word, blank_ok = "", False, False
        else:
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == ESCAPE:
                if i + 1 == len(text):
                    break
                word += ch
                i += 1
                ch = text[i]
            word += ch
        i += 1
    if in_word and (blank_ok or word):
        words.append(word)
    return words


class _Expander:
    def __init__(self, text: str, env: Mapping[str, str]) -> None:
        self.text, self.env, self.pos = text, env, 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def word(self, stop: str = "") -> str:
        """Read up to `stop` (consumed) or the end, processing quotes, escapes and $."""
        out = []
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(out)
            if ch == "'":
                out.append(self.single_quoted())
            elif ch == '"':
                out.append(self.double_quoted())
            elif ch == "$":
                out.append(self.dollar())
            else:
                self.next()
                if ch == ESCAPE:
                    ch = self.next()
                    if not ch:
                        break
                out.append(ch)
        if stop:
            raise InvalidArgument(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out)

    def single_quoted(self) -> str:
        self.next()
        start = self.pos
        end = self.text.find("'", start)
        if end < 0:
            raise InvalidArgument(
                "unexpected end of statement while looking for matching single-quote"
            )
        self.pos = end + 1
        return self.text[start:end]

    def double_quoted(self) -> str:
        self.next()
        out = []
        while True:
            ch = self.peek()
            if not ch:
                raise InvalidArgument(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == ESCAPE:
                following = self.peek()
                if not following:
                    continue
                if following in ('"', "$", ESCAPE):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        start = self.pos
        if self.peek().isdigit():
            while self.peek().isdigit():
                self.next()
        else:
            while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
                self.next()
        return self.text[start : self.pos]

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.env.get(name, "") if name else "$"
        self.next()
        if not self.peek():
            raise InvalidArgument("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise InvalidArgument("syntax error: bad substitution")
        name = self.name()
        op = self.next()
        if not op:
            raise InvalidArgument("syntax error: missing '}'")
        value, is_set = self.env.get(name, ""), name in self.env
        if op == "}":
            return value
        colon = op == ":"
        if colon:
            op = self.next()
        if op not in ("-", "+", "?"):
            raise InvalidArgument(f"unsupported modifier ({op}) in substitution")
        word = self.word("}")
        # With a colon, an empty value counts as unset.
        present = bool(value) if colon else is_set
        if op == "-":
            return value if present else word
        if op == "+":
            return word if present else ""
        if not present:
            default = (
                "is not allowed to be empty" if colon and is_set else "is not allowed to be unset"
            )
            raise InvalidArgument(f"{name}: {word or default}")
        return value


def expand(word: str, env: Mapping[str, str]) -> str:
    """Remove quotes and escapes from `word` and substitute variables from `env`."""
    return _Expander(word, env).word()


def env_map(env: list[str] | None) -> dict[str, str]:
    """`["K=V", ...]` (a config's Env) as a mapping; later entries win."""
    out = {}
    for item in env or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out
