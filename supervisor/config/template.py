"""`supervisor init`: the commented supervisor.yaml it writes, every value the default."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from supervisor.config.settings import CONFIG_FILENAME
from supervisor.errors import SupervisorError, UsageError


def write_init(repo_root: Path) -> Path:
    """Write INIT_TEMPLATE as the repository's supervisor.yaml; never overwrites an existing file."""
    path = repo_root / CONFIG_FILENAME
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(INIT_TEMPLATE)
    except FileExistsError:
        raise UsageError(
            f"{path} already exists; refusing to overwrite it",
            hint="edit it by hand, or move it away and run `supervisor init` again",
        ) from None
    except OSError as exc:
        raise SupervisorError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


INIT_TEMPLATE: Final = """\
# supervisor.yaml: settings for `supervisor` in this repository.
#
# Every key is optional and every value below is the default, so deleting a line changes nothing.
# Durations are written like 90s, 10m, 1h30m or 1d (a plain number is seconds).
# In any value, ${VAR} is replaced by the environment variable VAR, ${VAR:-fallback} gives a
# fallback for when VAR is unset or empty, and $$ is a literal $ ($NAME without braces is left
# alone, for the shell). Keep secrets (tokens, passwords) in environment variables, not here.

agent:
  # Which AI coding CLI runs in each pane: claude | codex | aider | gemini | generic.
  # The profile decides how its state is read and how prompts and approvals reach it.
  profile: claude
  # The command line that starts the agent (run by a shell). null = the profile's own command
  # (claude, codex, aider, gemini). Profile generic runs any program and needs one, e.g.
  #   command: ./scripts/my-agent --verbose
  command: null
  # Pause between starting two agents, so a batch of launches does not hit the CLI's login or
  # rate limits all at once. null = the profile's default (claude 2s, the others 0s).
  stagger: null

worktrees:
  # Where each session's git worktree is created. {repo} is this repository's directory name;
  # a relative path is relative to the repository root.
  dir: ../{repo}-worktrees
  # Shell commands run in every new worktree before its agent starts, e.g.
  #   setup: ["uv sync", "cp ../.env .env"]
  setup: []

limits:
  # Deepest agent tree: 1 = sessions only, 2 = sessions and helpers, 3 = also sub-helpers.
  max_level: 3
  # How long a session (a level-1 agent) may run before it is killed; null = no limit.
  session_timeout: null
  # How long a helper or sub-helper may run before it is killed; null = no limit.
  helper_timeout: 1h
  # A working agent with no output, no agent event and no CPU for this long is `stalled`.
  stall_after: 10m
  # An agent of profile generic (which reports no state of its own) counts as idle after
  # this long without output.
  idle_after: 5s
  # When an agent's process ends by itself: never | on-failure (only after a non-zero exit) |
  # always (a fresh agent in the same worktree each time, e.g. for task-board swarms).
  restart: never
  # How many times one agent is restarted before it is left `failed`.
  max_restarts: 3
  # An agent that exits sooner than this after its start counts as a failed start (as
  # supervisord's startsecs): the restart delay grows, and max_restarts of them in a row give up.
  start_seconds: 10s
  # At most this many automatic restarts of one agent (by the restart policy, on_stall: restart or
  # restore: auto) within auto_restart_window, however long each run lasted: past them it stays
  # exited, with the reason, and one `exited` alert (an agent whose screen or host keeps saying it
  # ended cannot make a restart storm). `supervisor restart` is yours and always counts afresh.
  max_auto_restarts: 10
  auto_restart_window: 1h
  # What to do, besides alerting, when an agent stalls: none | interrupt (Ctrl-C, then the
  # agent can be told what to do) | restart (stop it and start it again in its worktree).
  on_stall: none
  # How long `supervisor stop` (and a restart) waits after SIGTERM for an agent's processes
  # to end by themselves before it sends SIGKILL.
  stop_grace: 5s
  # `errors` fires when the same error line (per profile: API Error, Error: …) shows this
  # many times within this long.
  error_repeats: 3
  error_window: 10m
  # Agents whose panes went with supervisor's tmux server (it was killed, the machine rebooted), when
  # the engine starts: ask (the dashboard offers to restore them all) | auto (restored at once, each in
  # its own conversation) | never (only `supervisor restore` brings them back).
  restore: ask
  # An agent that hits a usage or rate limit is `limited` until the reset its CLI printed (ls
  # says when). on_limit: alert (a `limited` alert) | wait (the state alone). With
  # resume_after_limit: true, "continue" is typed into it once the limit has reset (not when
  # the CLI continues by itself, as Claude Code does after a 5-hour limit).
  on_limit: alert
  resume_after_limit: false
  # A `context` alert when an agent's conversation fills this much of its model's context window
  # (once each time it crosses it; resolved when it drops, after a compaction). off = never.
  context_alert: 90%

logs:
  # Size of one agent's pane transcript before it is rotated: a number of bytes, or
  # 512KiB, 10MiB, 1GiB, 5MB (KiB/MiB/GiB are powers of 1024, KB/MB/GB powers of 1000).
  max_bytes: 10MiB

alerts:
  # Slack, either a bot token + channel (alerts about one agent share a thread, and you can
  # answer approvals by replying `approve` or `deny <reason>` there, if listed in `approvers`)
  # or an incoming webhook (alerts only).
  # base_url points at another Slack API endpoint (Enterprise Grid, tests). For example:
  # Replies in a thread answer approvals only from the Slack members listed in `approvers`
  # (member ids: profile → ⋮ → Copy member ID); without the list, answers from Slack are off.
  #   slack: {token: "${SLACK_BOT_TOKEN}", channel: "#agents", approvers: [U024BE7LH]}
  #   slack: {webhook_url: "${SLACK_WEBHOOK_URL}"}
  slack: null
  # Email through SMTP. port defaults to 587; security: starttls (default) | ssl (usually
  # port 465) | plain (a local relay, no encryption). ca_file: a PEM file of extra CA
  # certificates to trust. `to` is a list of addresses (or one address). For example:
  #   email:
  #     host: smtp.example.com
  #     port: 587
  #     security: starttls
  #     username: "${SMTP_USER}"
  #     password: "${SMTP_PASSWORD}"
  #     sender: supervisor@example.com
  #     to: [me@example.com]
  email: null
  # A shell command run for every alert, with the alert's details in environment variables
  # (desktop notifications, pagers, chat tools). null = none.
  command: null
  # Show alerts in the status line of the supervisor's tmux session and ring its bell.
  tmux: true
  # Which triggers alert you (remove names to silence them):
  #   waiting   an agent needs a human: an approval prompt or a question
  #   stalled   a working agent went silent for limits.stall_after
  #   timeout   an agent ran past its time limit and was killed
  #   boundary  a commit touched a path the agent's contract forbids
  #   exited    an agent's process ended unexpectedly and will not be restarted
  #   errors    the same error keeps repeating
  #   deadlock  helpers wait for each other in a cycle
  #   escape    an agent's process works in another agent's worktree or the main checkout
  #   done      a session finished its turn
  #   merge     an automatic merge was stopped by a conflict or a failing merge.check
  #   limited   an agent hit a usage or rate limit (see limits.on_limit)
  #   budget    spending reached 80% or 100% of a budget
  #   context   an agent's context window is nearly full (see limits.context_alert)
  #   tamper    a branch moved by someone who may not move it (see `supervisor merge --accept-tamper`)
  #   host_down a host of `hosts:` cannot be reached: one alert naming its agents, resolved when it is back
  notify_on: [waiting, stalled, timeout, boundary, exited, errors, deadlock, escape, done, merge, limited,
              budget, context, tamper, host_down]
  # Send an alert again this often while its condition still holds; null = never repeat.
  repeat_after: 30m
  # Wait this long so that alerts firing together go out as one message.
  group_wait: 5s
  # Who hears that a helper finished its turn: its parent agent (parent), or you too (human).
  helper_done: parent
  # Alerts about one agent (or one host) in an hour; past them, what fires about it is gathered and
  # sent at most once every hour/max_per_hour (30: every 2 minutes), with how many times each
  # trigger fired. Nothing is dropped: an agent whose screen flaps cannot flood your channels.
  max_per_hour: 30

approval:
  # Tool calls that always need your approval, even where the agent CLI would allow them:
  #   require: ["Bash(git push*)", "Bash(rm -rf*)"]
  require: []
  # How long an approval waits for your answer before falling back to the CLI's own prompt;
  # null = wait indefinitely.
  timeout: 10m

merge:
  # A shell command that must pass before a plan merges a finished session by itself
  # (`merge: auto`), and that `supervisor compare` runs for each best-of-N candidate. It runs
  # in a scratch worktree holding the merged result (after worktrees.setup), e.g. "make test".
  # null = no check.
  check: null
  # How long the check may run before it counts as failed.
  check_timeout: 30m

budget:
  # What one session and all its helpers may spend, and what all agents of this repository
  # may spend in a day (midnight to midnight, local time): $20, 2M tokens, or both ($20, 2M
  # tokens; tokens count input, output and cache). null = no budget. A session's SESSION.md
  # may say `- Budget: …` too (the narrower applies); a helper's may only narrow its parent's.
  per_session_tree: null
  per_repository_per_day: null
  # A `budget` alert goes out at 80% and at 100%. At 100%: alert | stop (the session tree
  # is stopped, as `supervisor stop` does, and the alert says so).
  on_budget: alert

# Each agent runs in a bubblewrap sandbox (Linux; apt-get install bubblewrap): it sees its own worktree,
# its own branch and CLI folder, and not the supervisor's store, other agents' worktrees or your
# credentials; `stop` ends every process it started. Unset: sandbox when bubblewrap is installed.
# none = agents run as you, unsandboxed (`supervisor doctor` says what is then not enforced).
# isolation: sandbox
sandbox:
  # false: sandboxed agents get no network (loopback only).
  network: true
  # More folders agents may read, or write (a shared cache: ~/.cache/pip); relative to the repository.
  # What the sandbox hides (the store, other worktrees, credentials) stays hidden inside them.
  read: []
  write: []

# Machines that run agents over SSH (`supervisor hosts check` tells what one lacks). Each needs sshd, git,
# tmux >= 3.2 and Python >= 3.11; your own ssh setup applies (config, keys, agent, ProxyJump, known_hosts),
# and it must log you in without a password prompt. For example:
#   hosts:
#     box1:
#       ssh: box1                 # any destination your ssh accepts: an alias of ~/.ssh/config, user@host
#       ssh_config: ~/.ssh/config # the ssh config file to read (ssh -F); default: OpenSSH's own files
#       dir: ~/supervisor         # where clones and worktrees live on the host (~: the host user's home)
#       max_agents: 10            # how many agents it takes (placement capacity)
#     local: {max_agents: 10}     # this machine's capacity (`local` is this machine's name)
hosts: {}

# What a model's tokens cost, in USD per million tokens, over the table shipped with supervisor (see
# `supervisor usage`). Needed for a model the table does not know (its tokens are then shown with no
# cost, never a guess) or to use your own rates. input and output are required; cache_read and
# cache_write default to the input price; context_window (tokens) gives `context_percent`. E.g.
#   prices:
#     claude-opus-4-8: {input: 5.0, output: 25.0, cache_read: 0.5, cache_write: 6.25, context_window: 1000000}
prices: {}
"""
