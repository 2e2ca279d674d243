"""`supervisor log -f` on an agent on a host (the real sshd host box1, tests/remotes.py) follows it as it works: a
line it prints there is in the follow view within the time a local agent's is (tests/test_live_transcripts.py)."""

from __future__ import annotations

from tests.conftest import wait_until
from tests.remotes import HOST, Remote, remote_fixture  # noqa: F401  (the fixture)
from tests.test_live_transcripts import following

ANSWERS = ("the first far answer", "the second far answer")
SCRIPT = f"""\
turns:
  - [say: "FAR-READY"]
  - [say: "{ANSWERS[0]}"]
  - [say: "{ANSWERS[1]}"]
"""


def test_log_follow_shows_a_line_of_an_agent_on_a_host_while_it_is_on_its_screen(remote: Remote) -> None:
    box = remote.sandbox
    remote.request("start", name="far", task="get ready", command=remote.claude("far", SCRIPT), profile="claude",
                   host=HOST)
    wait_until(lambda: "FAR-READY" in remote.request("screen", name="far")["text"], timeout=30,
               message="its first turn")
    box.wait_state("far", "idle", timeout=30)
    with following(box, "far") as followed:
        wait_until(lambda: "FAR-READY" in followed.text, message="what it showed so far in `log -f`")
        for n, answer in enumerate(ANSWERS):
            remote.request("send", name="far", text=f"question {n}")
            wait_until(lambda a=answer: a in remote.request("screen", name="far")["text"], timeout=30,
                       interval=0.02, message=f"{answer} on its screen there")
            wait_until(lambda a=answer: a in followed.lines, timeout=2.0, interval=0.02,
                       message=f"{answer} in `log -f` within 2 s")
        assert followed.lines.count(ANSWERS[0]) == 1
