"""The host-side program as the engine ships it: a zipapp built from `supervisor.hostside`, named by the hash
of its bytes, and the bootstrap that runs it on a host.

The remote command is `python3 -I -S -c BOOT VERSION DIR`. BOOT first makes its process not dumpable (Linux:
`PR_SET_DUMPABLE` 0, so no other process of the host user — an agent — can open `/proc/PID/fd` of the program
and write into the link), checks the Python (≥ 3.11, or it says which one it found), and reads
`~/.local/share/supervisor/host-VERSION.pyz`: when it is there and its bytes hash to VERSION, those bytes are
run, from memory (the file is not read again, so it cannot be swapped in between); otherwise it asks for the
program on the same connection: it pushes `{"event": "install"}`, reads `LENGTH\\n` and the zipapp's bytes from
stdin, checks their hash against VERSION, writes the file atomically, then runs those bytes. So a host is
installed once per version, with no scp and no second connection, a file changed on the host is replaced
rather than run, and an edit to the package (an editable install) is a new version. The zipapp is built in
memory, once per process.
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
if sys.platform.startswith("linux"):
 try:
  import ctypes;ctypes.CDLL(None).prctl(4,0,0,0,0)
 except Exception:pass
def say(m):
 sys.stdout.write(json.dumps(m)+"\\n");sys.stdout.flush()
if sys.version_info<{minimum!r}:
 say(dict(event="fatal",error="the host's python3 is %d.%d; supervisor needs Python >= {wanted}"
  %tuple(sys.version_info[:2])));sys.exit(3)
import hashlib
v,d=sys.argv[1],sys.argv[2]
p=os.path.expanduser("{INSTALL_DIR}/host-%s.pyz"%v)
def ours(b):
 return hashlib.sha256(b).hexdigest()[:len(v)]==v
try:
 with open(p,"rb") as f:b=f.read()
except OSError:b=b""
if not ours(b):
 say(dict(event="install",path=p))
 i=sys.stdin.buffer;n=int(i.readline());b=i.read(n)
 if len(b)!=n or not ours(b):
  say(dict(event="fatal",error="the host program arrived damaged (%d of %d bytes)"%(len(b),n)));sys.exit(3)
 os.makedirs(os.path.dirname(p),exist_ok=True);t="%s.%d"%(p,os.getpid())
 with open(t,"wb") as f:f.write(b)
 os.replace(t,p)
import io,zipfile,importlib.abc,importlib.util
z=zipfile.ZipFile(io.BytesIO(b));S=dict((n[:-3].replace("/","."),z.read(n)) for n in z.namelist() if n.endswith(".py"))
class Z(importlib.abc.MetaPathFinder,importlib.abc.Loader):
 def find_spec(s,n,path=None,target=None):
  k=n+".__init__" if n+".__init__" in S else n
  if k in S and n!="__main__":
   return importlib.util.spec_from_loader(n,s,origin=p+"/"+k.replace(".","/")+".py",is_package=k!=n)
 def create_module(s,spec):return None
 def exec_module(s,m):
  k=m.__name__+".__init__" if m.__name__+".__init__" in S else m.__name__
  exec(compile(S[k],m.__spec__.origin,"exec"),m.__dict__)
sys.meta_path.insert(0,Z());sys.argv=[p,v,d];m=dict(__name__="__main__",__file__=p+"/__main__.py")
exec(compile(S["__main__"],m["__file__"],"exec"),m)
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
