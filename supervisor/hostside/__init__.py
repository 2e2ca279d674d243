"""The program of ours that runs on a host (SPEC §12), at the far end of the link's one connection.

It imports nothing but the Python standard library (a host needs only Python >= 3.11, git and tmux) and runs
there as a zipapp the engine builds from this package (`supervisor.hosts.hostapp`), so its modules import
each other relatively: the same files are `supervisor.hostside` at home and `hostside` in the zipapp.
Protocol: JSON lines on stdin/stdout (`server`).
"""
