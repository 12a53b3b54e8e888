#!/usr/bin/env python3
"""Copies each verifier sample into docs/verifying.md, where the doc says
`<!-- include: <path relative to docs/> -->` right before a fenced code block: the block's
content becomes the file's. Run after changing a sample; tests/py/test_verifying_samples.py
fails while the doc and the files differ."""

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOC = DOCS / "verifying.md"
INCLUDE = re.compile(r"(<!-- include: (\S+) -->\n```[a-z]*\n)(.*?)(^```$)", re.S | re.M)


def main() -> int:
    text = DOC.read_text()
    new = INCLUDE.sub(lambda m: m.group(1) + (DOCS / m.group(2)).read_text() + m.group(4), text)
    if new != text:
        DOC.write_text(new)
        print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
