"""`supervisor` commands, a module per family; supervisor.cli builds the parser from each module's `register`
and dispatches. Each module registers its commands (their options next to their code) and imports what it
needs when it runs. `common` holds what they share: the engine request, JSON and plain-text output."""
