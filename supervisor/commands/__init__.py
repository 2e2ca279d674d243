"""`supervisor` commands kept apart from supervisor.cli (which parses and holds the single-agent ones):
acting on many agents at once (`many`), reviewing an agent's work (`review`), ending a repository's run
(`down`), and the machines that run agents over SSH (`hosts`). Each module registers its commands on the parser
and imports what it needs when it runs."""
