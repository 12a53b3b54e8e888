"""{{name}}: a postwire plugin. It sees each event (JSON, schema ``postwire.email.v1``) and
says what to do with it: deliver (possibly modified), drop, or route elsewhere."""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types


class WitWorld(wit_world.WitWorld):
    def transform(self, event: str) -> types.Outcome:
        try:
            ev = json.loads(event)
            subject = ev["message"].get("subject") or ""
        except (ValueError, KeyError, TypeError) as e:
            raise Err(types.PluginError_InvalidEvent(str(e)))
        try:
            config = json.loads(host.config())
        except ValueError as e:
            raise Err(types.PluginError_InvalidConfig(str(e)))
        if "[bulk]" in subject:
            return types.Outcome_Drop("bulk mail")
        host.log(host.Level.INFO, f"{{name}} saw {subject!r}")
        ev["tagged_by"] = config.get("tag", "{{name}}")
        return types.Outcome_Deliver(json.dumps(ev))
