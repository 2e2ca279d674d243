"""A host reached over SSH as a `supervisor.hosts.base.Host`: every method a request over its one link.

`host.RemoteHost` is the Host; it hands each part to the module that holds it: `worktrees` (the clone, worktrees,
SESSION.md and guard, commits brought home, setup run there), `panes` (the host's tmux: launch, screens, keys,
ending the tree), `channel` (each agent's own socket on the host, its hook events and requests relayed home in
order, held answers). `layout` says where each thing lives on the host.
"""
