"""Where every benchmark writes its figures: `results/<name>.json` for machines and
`results/<name>.md` for people, the markdown also printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def save(name: str, data: dict[str, Any], markdown_lines: list[str]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    text = "\n".join(markdown_lines).rstrip("\n") + "\n"
    (RESULTS / f"{name}.md").write_text(text)
    print(text, end="")
