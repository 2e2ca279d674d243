"""`supervisor` commands kept apart from supervisor.cli (which parses and holds the single-agent ones):
acting on many agents at once (`many`), reviewing an agent's work (`review`), and ending a repository's
run (`down`). Each module registers its commands on the parser and imports what it needs when it runs."""
