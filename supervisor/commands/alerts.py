"""`supervisor alerts`: test the channels, list recent alerts and their delivery, snooze and unsnooze."""

from __future__ import annotations

import argparse

from supervisor.commands.common import Add, call, print_json
from supervisor.errors import SupervisorError
from supervisor.hostside.texts import age
from supervisor.hostside.texts import table as text_table


def register(add: Add) -> None:
    p = add("alerts", cmd_alerts, "alert channels, recent alerts and silences")
    actions = p.add_subparsers(dest="alerts_action", metavar="ACTION", required=True)
    a = actions.add_parser("test", help="send a test alert on every configured channel and report each result")
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("ls", help="recent alerts and their delivery on each channel")
    a.add_argument("agent", nargs="?", help="only alerts about this agent (or naming it), or a subject such as tmux:")
    a.add_argument("--limit", type=int, default=20)
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("snooze", help="hold back alerts about an agent and/or a trigger for a while")
    a.add_argument("agent", nargs="?", help="the agent, or another subject such as tmux: (default: every one; "
                   "then --trigger is needed)")
    a.add_argument("--trigger", help="only this trigger: waiting, stalled, done, exited, ...")
    a.add_argument("--for", dest="duration", default="1h", help="how long, e.g. 30m or 2h (default 1h)")
    a = actions.add_parser("unsnooze", help="end a silence (by AGENT/--trigger, or --id)")
    a.add_argument("agent", nargs="?")
    a.add_argument("--trigger")
    a.add_argument("--id", type=int, help="the silence's id from `supervisor alerts silences`")
    a = actions.add_parser("silences", help="the silences in force")
    a.add_argument("--json", action="store_true")


def cmd_alerts(args: argparse.Namespace) -> int:
    """`supervisor alerts test|ls|snooze|unsnooze|silences` (alert channels, history and silences)."""
    action = args.alerts_action
    if action == "test":
        result = call("alerts_test")
        if args.json:
            print_json(result)
            return 0 if result["ok"] else 1
        if not result["channels"]:
            raise SupervisorError("no alert channel is configured",
                                  hint="add alerts.slack, alerts.email or alerts.command to supervisor.yaml")
        for item in result["channels"]:
            print(f"{'ok  ' if item['ok'] else 'FAIL'} {item['channel']:<8} {item['detail']} ({item['seconds']:.2f}s)")
        return 0 if result["ok"] else 1
    if action == "ls":
        alerts = call("alerts", {"name": args.agent, "limit": args.limit})
        if args.json:
            print_json(alerts)
            return 0
        if not alerts:
            print("no alerts")
            return 0
        rows = [["ID", "AGE", "ABOUT", "STATUS", "TRIGGERS", "DELIVERY"]]
        for alert in reversed(alerts):
            triggers = ",".join(item["trigger"] for item in alert["items"])
            deliveries = ", ".join(
                f"{d['channel']} {d['status']}" + (f" ({d['attempts']} tries: {d['last_error']})"
                                                   if d["status"] == "pending" and d["last_error"] else "")
                for d in alert["deliveries"]) or ("to " + alert["route"] if alert["route"] != "human" else "-")
            about = alert["agent"] or f"{alert['subject']} ({', '.join(alert['agents'])})"
            rows.append([str(alert["id"]), age(alert["created"]), about[:60], alert["status"], triggers,
                         deliveries[:120]])
        print(text_table(rows))
        return 0
    if action == "snooze":
        silence = call("snooze", {"name": args.agent, "trigger": args.trigger, "duration": args.duration})
        what = " ".join(part for part in (silence["agent"], silence["trigger"]) if part)
        print(f"snoozed {what} for {silence['remaining']} (until {silence['until']}, silence {silence['id']})")
        return 0
    if action == "unsnooze":
        removed = call("unsnooze", {"name": args.agent, "trigger": args.trigger, "id": args.id})["removed"]
        print(f"removed {removed} silence(s); alerts they held back go out now if still true")
        return 0
    found = call("silences")
    if args.json:
        print_json(found)
    elif not found:
        print("no silences")
    else:
        rows = [["ID", "ABOUT", "TRIGGER", "REMAINING", "UNTIL"]]
        rows += [[str(s["id"]), s["agent"] or "*", s["trigger"] or "*", s["remaining"], s["until"]] for s in found]
        print(text_table(rows))
    return 0
