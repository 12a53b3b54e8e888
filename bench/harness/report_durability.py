"""The durable / unsynced pair of docs/benchmarks.md (section 1), apart from report.py."""

from __future__ import annotations


def durability_section(w, e2e: dict, cfg: dict, f, ms, size_name) -> None:
    """postwire as shipped (`sync_interval: always`) beside nats-server's default sync timer."""
    pairs = []
    for size in cfg["sizes"]:
        pair = [next((r for r in e2e.values() if r["system"] == s and r["size"] == size), None)
                for s in ("postwire", "postwire (unsynced)")]
        if all(pair):
            pairs.append((size, *pair))
    if not pairs:
        return
    w("### What durability costs\n")
    w("`postwire` runs against a nats-server with `sync_interval: always` (every write is "
      "fsynced before the PubAck: a 250 survives a power cut), as every shipped config does; "
      "`postwire (unsynced)` against nats-server's default, which syncs every two minutes "
      "(`nats.allow_unsynced = true`). Which writes are synced, and why: "
      "[operations.md](operations.md#durability).\n")
    w("| size | throughput durable / unsynced (msg/s) | p99 durable / unsynced (ms) | "
      "CPU ms/msg durable / unsynced | nats-server CPU ms/msg durable / unsynced |")
    w("|---|---|---|---|---|")
    for size, d, u in pairs:
        dt, ut = d["throughput"], u["throughput"]
        w(f"| {size_name(size)} | {f(dt['rate'], 0)} / {f(ut['rate'], 0)} | "
          f"{ms(d['latency']['p99_ms'])} / {ms(u['latency']['p99_ms'])} | "
          f"{dt['cpu_ms_per_msg_total']:.3f} / {ut['cpu_ms_per_msg_total']:.3f} | "
          f"{dt['cpu_ms_per_msg'].get('nats-server', 0):.3f} / "
          f"{ut['cpu_ms_per_msg'].get('nats-server', 0):.3f} |")
    w("")
