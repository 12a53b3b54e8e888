"""The figures of docs/benchmarks.md: throughput and latency, the latency distribution, CPU
per message by process, and the scaling run."""

from __future__ import annotations

from pathlib import Path

from .phases import APART

# Issue 17's target for p99 at half load, drawn on the latency figures.
P99_TARGET_MS = 10


def plots(res: dict, out: Path, order: list[str], size_name) -> list[str]:
    """The figures of docs/benchmarks/ (matplotlib; none when it is missing)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    e2e = res.get("e2e", {})
    sizes = sorted({r["size"] for r in e2e.values()})
    systems = [s for s in order if any(r["system"] == s for r in e2e.values())]

    def get(system, size):
        return next((r for r in e2e.values() if r["system"] == system and r["size"] == size), None)

    if e2e:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        width = 0.8 / max(len(sizes), 1)
        for i, size in enumerate(sizes):
            xs = [j + i * width for j in range(len(systems))]
            tp = [(get(s, size) or {}).get("throughput", {}).get("rate", 0) for s in systems]
            axes[0].bar(xs, tp, width, label=size_name(size))
            p99 = [(get(s, size) or {}).get("latency", {}).get("p99_ms", 0) for s in systems]
            p50 = [(get(s, size) or {}).get("latency", {}).get("p50_ms", 0) for s in systems]
            axes[1].bar(xs, p99, width, label=f"p99, {size_name(size)}", alpha=0.55)
            axes[1].bar(xs, p50, width, label=f"p50, {size_name(size)}")
        for ax, title, unit in ((axes[0], "End-to-end throughput", "messages/s"),
                                (axes[1], "End of DATA → webhook, at half of max throughput", "ms")):
            ax.set_xticks([j + width * (len(sizes) - 1) / 2 for j in range(len(systems))])
            ax.set_xticklabels(systems, fontsize=8)
            ax.set_title(title, fontsize=10)
            ax.set_ylabel(unit)
            ax.legend(fontsize=7)
        axes[1].axhline(P99_TARGET_MS, color="red", linestyle=":", linewidth=1)
        fig.tight_layout()
        fig.savefig(out / "e2e.png", dpi=110)
        plt.close(fig)
        made.append("e2e.png")

        have_samples = any((r.get("latency") or {}).get("samples_ms") for r in e2e.values())
        fig, ax = plt.subplots(figsize=(6, 4))
        for s in systems if have_samples else []:
            r = get(s, min(sizes))
            lat = (r or {}).get("latency", {}).get("samples_ms") or []
            if lat:
                ax.plot(lat, [(i + 1) / len(lat) for i in range(len(lat))], label=s)
        ax.set_xscale("log")
        ax.set_xlabel("end of DATA → webhook (ms, log)")
        ax.set_ylabel("fraction of messages")
        ax.set_title(f"Latency distribution, {size_name(min(sizes))}, half load", fontsize=10)
        ax.axvline(P99_TARGET_MS, color="red", linestyle=":", linewidth=1)
        ax.legend(fontsize=7)
        fig.tight_layout()
        if have_samples:  # not when re-rendering from results.json (no samples there)
            fig.savefig(out / "latency-cdf.png", dpi=110)
        plt.close(fig)
        if (out / "latency-cdf.png").exists():
            made.append("latency-cdf.png")

        fig, ax = plt.subplots(figsize=(7, 4))
        bottoms = [0.0] * len(systems)
        groups = []
        for s in systems:
            for g in (get(s, min(sizes)) or {}).get("throughput", {}).get("cpu_ms_per_msg", {}):
                if g not in groups and g not in APART:
                    groups.append(g)
        for g in groups:
            vals = [(get(s, min(sizes)) or {}).get("throughput", {}).get("cpu_ms_per_msg", {})
                    .get(g, 0) for s in systems]
            ax.bar(systems, vals, bottom=bottoms, label=g)
            bottoms = [b + v for b, v in zip(bottoms, vals)]
        ax.axhline(0.5, color="red", linestyle=":", linewidth=1)
        ax.set_ylabel("CPU ms per message")
        ax.set_title(f"CPU per message by process, {size_name(min(sizes))}", fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "cpu.png", dpi=110)
        plt.close(fig)
        made.append("cpu.png")

    sc = res.get("scaling") or {}
    if sc:
        ns = sorted(sc, key=int)
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot([int(n) for n in ns], [sc[n]["rate"] for n in ns], marker="o")
        ax.set_xticks([int(n) for n in ns])
        ax.set_xlabel("process workers")
        ax.set_ylabel("messages/s end to end")
        ax.set_ylim(bottom=0)
        ax.set_title("postwire scaling (2 KB, 1 ingest, 1 deliver)", fontsize=10)
        fig.tight_layout()
        fig.savefig(out / "scaling.png", dpi=110)
        plt.close(fig)
        made.append("scaling.png")
    return made
