"""Triage: labels a mail by keywords and drops auto-replies.

Adds ``triage = {"priority": "high" | "normal", "labels": [...]}`` to the event. A mail with
an ``Auto-Submitted`` header other than ``no`` (RFC 3834: out-of-office and other automatic
replies) is dropped.

Config (optional)::

    {"urgent": ["urgent", "asap", "outage"],
     "labels": {"billing": ["invoice", "receipt"], "support": ["help", "broken"]}}

Build: ``componentize-py -d guest-sdk/wit -w plugin componentize --stub-wasi app -o triage.wasm``
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types

DEFAULT_URGENT = ["urgent", "asap", "outage"]


class WitWorld(wit_world.WitWorld):
    def transform(self, event: str) -> types.Outcome:
        try:
            ev = json.loads(event)
            message = ev["message"]
        except (ValueError, KeyError, TypeError) as e:
            raise Err(types.PluginError_InvalidEvent(str(e)))
        try:
            cfg = json.loads(host.config())
            urgent = [w.lower() for w in cfg.get("urgent", DEFAULT_URGENT)]
            labels_cfg = cfg.get("labels", {})
        except (ValueError, AttributeError) as e:
            raise Err(types.PluginError_InvalidConfig(str(e)))

        for name, value in message.get("headers", []):
            if name.lower() == "auto-submitted" and value.strip().lower() != "no":
                host.log(host.Level.INFO, "Dropping an automatic reply.")
                return types.Outcome_Drop(f"auto-submitted: {value.strip()}")

        words = " ".join(
            [message.get("subject") or "", message.get("text") or ""]
        ).lower()
        labels = sorted(
            label
            for label, keywords in labels_cfg.items()
            if any(k.lower() in words for k in keywords)
        )
        priority = "high" if any(w in words for w in urgent) else "normal"
        ev["triage"] = {"priority": priority, "labels": labels}
        return types.Outcome_Deliver(json.dumps(ev))
