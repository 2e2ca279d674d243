"""The host-side program as the engine ships it: a zipapp built from `supervisor.hostside`, named by the hash
of its bytes, and the bootstrap that runs it on a host.

The remote command is `python3 -I -S -c BOOT VERSION DIR`. BOOT checks the Python (≥ 3.11, or it says which
one it found), runs `~/.local/share/supervisor/host-VERSION.pyz` when present, and otherwise first asks for it
on the same connection: it pushes `{"event": "install"}`, reads `LENGTH\\n` and the zipapp's bytes from stdin,
checks their hash against VERSION, writes the file atomically, then runs it. So a host is installed once per
version, with no scp and no second connection, and an edit to the package (an editable install) is a new
version. The zipapp is built in memory, once per process.
"""

from __future__ import annotations

import functools
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from supervisor import hostside

MIN_PYTHON = (3, 11)
INSTALL_DIR = "~/.local/share/supervisor"
_MAIN = b"from hostside.server import main\nmain()\n"
_STAMP = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same files make the same bytes, so the same version


def boot_source(minimum: tuple[int, int] = MIN_PYTHON) -> str:
    """The bootstrap's source (`python3 -c` runs it; kept to what any Python 3 parses, to say which it is)."""
    wanted = ".".join(map(str, minimum))
    return f"""\
import sys,os,json
def say(m):
 sys.stdout.write(json.dumps(m)+"\\n");sys.stdout.flush()
if sys.version_info<{minimum!r}:
 say(dict(event="fatal",error="the host's python3 is %d.%d; supervisor needs Python >= {wanted}"
  %tuple(sys.version_info[:2])));sys.exit(3)
import hashlib
v,d=sys.argv[1],sys.argv[2]
p=os.path.expanduser("{INSTALL_DIR}/host-%s.pyz"%v)
if not os.path.isfile(p):
 say(dict(event="install",path=p))
 i=sys.stdin.buffer;n=int(i.readline());b=i.read(n)
 if len(b)!=n or hashlib.sha256(b).hexdigest()[:len(v)]!=v:
  say(dict(event="fatal",error="the host program arrived damaged (%d of %d bytes)"%(len(b),n)));sys.exit(3)
 os.makedirs(os.path.dirname(p),exist_ok=True);t="%s.%d"%(p,os.getpid())
 with open(t,"wb") as f:f.write(b)
 os.replace(t,p)
sys.argv=[p,v,d]
import runpy;runpy.run_path(p,run_name="__main__")
"""


BOOT = boot_source()


@dataclass(frozen=True)
class HostApp:
    data: bytes  # the zipapp
    version: str  # the start of its sha256: its file name on the host, `host-VERSION.pyz`

    def boot_words(self, host_dir: str, python: str = "python3") -> list[str]:
        """The remote command's words (for `ssh_argv`, or to run locally as a transport of the protocol)."""
        return [python, "-I", "-S", "-c", BOOT, self.version, host_dir]


def build(extra: dict[str, bytes] | None = None) -> HostApp:
    """The zipapp of `supervisor.hostside` (with `extra` files, which make another version: tests use it to
    install a version no other test has installed)."""
    source = Path(hostside.__file__).parent
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        files = {f"hostside/{path.name}": path.read_bytes() for path in sorted(source.glob("*.py"))}
        files["__main__.py"] = _MAIN
        files.update(extra or {})
        for name, content in sorted(files.items()):
            entry = zipfile.ZipInfo(name, _STAMP)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, content)
    data = buffer.getvalue()
    return HostApp(data, hashlib.sha256(data).hexdigest()[:16])


@functools.cache
def host_app() -> HostApp:
    """This engine's host program, built once per process."""
    return build()
