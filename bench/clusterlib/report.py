"""The results of a run as the markdown table of docs/operations.md."""

from __future__ import annotations

from typing import Any

#: the function flows (H/M/S/K columns); WebSub has columns of its own
SHORT = {"http": "H", "mqtt": "M", "stream": "S", "kafka": "K"}


def _flows(fault: dict[str, Any], key: str) -> str:
    return " ".join(f"{SHORT[k]}{v[key]}" for k, v in fault["flows"].items() if k in SHORT)


def _websub(fault: dict[str, Any]) -> str:
    w = fault["flows"].get("websub")
    if w is None:
        return "-"
    return f"{w['sent']} / {w['handled']} / {w['lost']} / {w['run_twice']}"


def markdown(report: dict[str, Any]) -> str:
    rows = [
        "| fault | sent (H/M/S/K) | lost | run twice | WebSub sent / delivered / lost / twice "
        "| sync calls failed | cron missed / doubled | slowest item, s | back to normal, s "
        "| needed a person |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in report["faults"]:
        slowest = max((v["latency_max_s"] or 0) for v in f["flows"].values())
        sync = f["sync_calls"] or {"failed": 0, "ok": 0}
        back = f"{f['recovery_s']:.1f}"
        if f["end"] - f["inject"] > 3:  # a fault undone later (a cut link, netem, a restart)
            back += f" ({f['recovery_after_undo_s']:.1f} after undo)"
        functions = [v for k, v in f["flows"].items() if k in SHORT]
        lost = _flows(f, "lost") if any(v["lost"] for v in functions) else "0"
        twice = _flows(f, "run_twice") if any(v["run_twice"] for v in functions) else "0"
        rows.append(
            f"| {f['fault']} | {_flows(f, 'sent')} | {lost} | {twice} | {_websub(f)} | "
            f"{sync['failed']} of {sync['ok'] + sync['failed']} | "
            f"{f['cron']['missed']} / {f['cron']['doubled']} | {slowest:.1f} | {back} | "
            f"{'yes' if f['needed_a_person'] else 'no'} |"
        )
    return "\n".join(rows)
