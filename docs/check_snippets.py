#!/usr/bin/env python3
"""Docs say what the code does: every C/C++ snippet in the given Markdown pages must be a quote of a file the
build compiles.

A snippet is a ```cpp (or ```c) block. Lines that are only "..." split it into pieces (an elision); each
piece must appear, line after line, in one source file of the repository (docs/examples/, the library,
examples/, ...), compared with leading and trailing blanks removed and empty lines skipped. A snippet that
quotes a deleted or changed line fails, naming the page, the line and the first line not found.

Usage: check_snippets.py SOURCE_ROOT PAGE.md...   (pages relative to SOURCE_ROOT)
"""
import pathlib
import re
import sys

SOURCE_DIRS = ["kernels", "core", "autograd", "nn", "distributed", "capi", "include", "examples", "docs", "bench",
               "tests"]
FENCE = re.compile(r"^\s*```(\S*)\s*$")


def normalise(lines):
    return [line.strip() for line in lines if line.strip()]


def snippets(page):
    """(line number, language, lines) of every fenced block of the page."""
    out, block, lang, start = [], None, None, 0
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        m = FENCE.match(line)
        if block is None and m:
            block, lang, start = [], m.group(1), number + 1
        elif block is not None and m and not m.group(1):
            out.append((start, lang, block))
            block = None
        elif block is not None:
            block.append(line)
    return out


def pieces(lines):
    piece = []
    for line in lines:
        if line.strip() in ("...", "// ..."):
            if piece:
                yield piece
            piece = []
        else:
            piece.append(line)
    if piece:
        yield piece


def contains(haystack, needle):
    n = len(needle)
    first = needle[0]
    return any(haystack[i:i + n] == needle for i, line in enumerate(haystack) if line == first)


def main():
    root = pathlib.Path(sys.argv[1])
    sources = {}
    for folder in SOURCE_DIRS:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in (".cpp", ".h", ".c") and path.is_file():
                sources[path] = normalise(path.read_text(encoding="utf-8", errors="replace").splitlines())
    failures, checked = 0, 0
    for name in sys.argv[2:]:
        page = root / name
        for start, lang, block in snippets(page):
            if lang not in ("cpp", "c++", "c"):
                continue
            for piece in pieces(block):
                needle = normalise(piece)
                if not needle:
                    continue
                checked += 1
                if any(contains(lines, needle) for lines in sources.values()):
                    continue
                # Name the first line no source file has in this order: the longest prefix found.
                found = 0
                for k in range(1, len(needle) + 1):
                    if any(contains(lines, needle[:k]) for lines in sources.values()):
                        found = k
                    else:
                        break
                print(f"{name}:{start}: snippet not found in any source file; from line {found + 1} of the "
                      f"piece on: {needle[found]!r}")
                failures += 1
    if failures:
        print(f"docs snippets: {failures} of {checked} pieces quote code that is not in the repository")
        return 1
    print(f"docs snippets: all {checked} pieces of C/C++ in {len(sys.argv) - 2} pages are quotes of source files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
