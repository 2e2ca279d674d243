"""Tokens, cost and context of every agent, read from its CLI's own records (never from its screen).

- records: what a reader finds in a file (a message's tokens, the context in use);
- claude, codex, gemini, aider: one reader per CLI, lines in, records out;
- follow: which files an agent's CLI writes, read incrementally (new bytes only);
- prices: what a token costs, per model;
- ledger: the store's tables of records and read positions;
- totals: per agent, per tree, per plan, per day (the interface budgets and alerts use);
- service: the engine's thread that keeps them up to date.
"""
