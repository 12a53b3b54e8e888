"""A Python plugin that writes to stdout and stderr, for the host's output tests.

Config ``{"do": "print" | "raise" | "fail" | "remember"}``: ``print`` prints a line to stdout
and one to stderr, then delivers the event; ``raise`` raises an uncaught exception (its
traceback goes to stderr); ``fail`` prints, then returns ``failed``; ``remember`` delivers the
subjects earlier messages left in this instance (a module global) and leaves its own, with a
few MiB of heap: with a fresh instance per message it always reports none.
"""

import json
import sys

import wit_world

SEEN: list[str] = []
from componentize_py_types import Err
from wit_world.imports import host, types


class WitWorld(wit_world.WitWorld):
    def transform(self, event: str) -> types.Outcome:
        action = json.loads(host.config()).get("do", "print")
        subject = json.loads(event)["message"].get("subject")
        if action == "remember":
            seen_before = list(SEEN)
            SEEN.append(subject or "")
            SEEN.append("x" * (4 << 20))  # dirty a few MiB of the interpreter's heap
            return types.Outcome_Deliver(json.dumps({"seen_before": seen_before[::2]}))
        if action == "raise":
            raise ValueError(f"noisy-py raises on purpose (subject {subject!r})")
        print(f"noisy-py: looking at {subject!r}")
        print("noisy-py: a line on stderr", file=sys.stderr)
        if action == "fail":
            raise Err(types.PluginError_Failed("noisy-py fails on purpose"))
        return types.Outcome_Deliver(event)
