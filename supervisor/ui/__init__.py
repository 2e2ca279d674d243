"""The dashboard (Textual). Only `supervisor.commands.dashboard.cmd_ui` imports it, lazily: nothing outside this package
imports Textual. `source` (the engine through the client API), `model` and `actions` are plain Python;
`live` and `app` are the app, `tables`, `pane` and `screens` its widgets, `fake` a stand-in engine for tests."""
