"""A Python plugin that writes to stdout and stderr, for the host's output tests.

Config ``{"do": "print" | "raise" | "fail"}``: ``print`` prints a line to stdout and one to
stderr, then delivers the event; ``raise`` raises an uncaught exception (its traceback goes
to stderr); ``fail`` prints, then returns ``failed``.
"""

import json
import sys

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types


class WitWorld(wit_world.WitWorld):
    def transform(self, event: str) -> types.Outcome:
        action = json.loads(host.config()).get("do", "print")
        subject = json.loads(event)["message"].get("subject")
        if action == "raise":
            raise ValueError(f"noisy-py raises on purpose (subject {subject!r})")
        print(f"noisy-py: looking at {subject!r}")
        print("noisy-py: a line on stderr", file=sys.stderr)
        if action == "fail":
            raise Err(types.PluginError_Failed("noisy-py fails on purpose"))
        return types.Outcome_Deliver(event)
