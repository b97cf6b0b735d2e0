"""Run untrusted, model-written Python (a synthesized solution's program, a ToRA-style tool call of the evaluation's
`protocol=tool`) in a separate, fenced process, and say what happened: `run_program(code, limits) -> SandboxResult`.

Our process never evaluates or imports the program. It starts a fresh interpreter in isolated mode (`-I -S -B`: no
site-packages, no PYTHON* variables, no user directories, no bytecode written) with an empty environment (an API key
in ours never reaches it), in a private temporary directory that is removed afterwards. Layers, outermost first —
each one is reported in `SandboxResult.layers` when it was active:

- `user_ns`, `net_ns`, `pid_ns`: where `unshare` can make namespaces (util-linux; probed once), the program runs in a
  fresh network namespace (no interfaces but a downed loopback: nothing to connect to) and PID namespace (it sees no
  other process, and every process it may have started dies with it). As root no user namespace is needed (and none
  is made: see `unprivileged_uid`).
- `mount_ns`, `readonly_view`, `no_capabilities` (`limits.filesystem`; probed once, with a program run through it):
  in a private mount namespace the program's root directory is an empty read-only tmpfs holding, bound read-only,
  only the interpreter, the directories of the shared libraries it and the allowed packages map (found by a probe
  interpreter's /proc/self/maps), the standard library (its site-packages hidden) and the allowed packages, and,
  writable, its private directory. `chroot` into it, then `setpriv` drops every capability (bounding and inheritable
  sets, no_new_privs), so the program can neither mount, unmount nor chroot its way back out. /etc, /home, /proc,
  /dev, the project and its data are simply not there.
- `unprivileged_uid`: run by root, the program runs as `nobody` (uid 65534): files the view shows are read as an
  ordinary user, and the kernel applies the process-count limit (it never does to uid 0).
- `rlimits`: CPU seconds, address space (a huge allocation is a MemoryError, not a swapping machine), file size,
  open files, no core dumps — set in the child before exec; process count (`rlimit_nproc`) is set by the
  bootstrap once the namespace wrapper has forked, and is reported only where the kernel applies it (not to uid 0).
- `wall_clock`: a wall-clock limit after which the whole process group is killed.
- `audit_hook`: a bootstrap of ours, run before the program, installs a `sys.addaudithook` hook (which the code that
  follows cannot remove): no process creation (fork, exec, spawn, subprocess, system), no signals to others, no
  sockets, no `ctypes`, no symlinks or permission changes, no rlimit changes; files are readable only inside the
  private directory, the standard library and the allowed packages' directories, and writable only inside the
  private directory; no module is loaded from anywhere else. The hook reads nothing the program could rebind: every
  function it calls is bound when it is defined, and it is unreachable afterwards (gc introspection is refused).
  It is the file guard where the read-only view cannot be made, and a second wall where it can.
- Output is read through pipes and cut to `limits.output_bytes` (stdout's head, stderr's tail).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import resource
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

_MEMORY_EXIT = 86  # the bootstrap's exit status for a MemoryError in the program
_SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
_UNSHARE = ("--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child")
_FENCE = ("--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child")  # root makes these without a user ns
_NOBODY = 65534
_PYTHON_FLAGS = ("-I", "-S", "-B")
# Extension modules of the standard library the view probe does not load (they are refused, or touch a terminal).
_PROBE_SKIPS = (
    "_ctypes",
    "_posixsubprocess",
    "_xxsubinterpreters",
    "_test",
    "xx",
    "_xx",
    "_curses",
    "_tkinter",
    "readline",
)

# Run once (outside any fence) as `python -I -S -c _PROBE <json>`: loads the allowed packages and the standard
# library's extension modules, and says which files the interpreter mapped (its shared libraries) and where its
# standard library and its installation's site-packages are.
_PROBE = r"""
import json, os, sys, sysconfig
cfg = json.loads(sys.argv[1])
stdlib = [p for p in sys.path if p]
sys.path += cfg["path"]
for name in cfg["packages"]:
    __import__(name)
for folder in [p for p in sys.path if p.endswith("lib-dynload")]:
    for module in {f.split(".")[0] for f in os.listdir(folder)}:
        if not module.startswith(tuple(cfg["skip"])):
            try:
                __import__(module)
            except Exception:
                pass
with open("/proc/self/maps") as maps:
    mapped = sorted({line.split(None, 5)[5].strip() for line in maps if line.count(" ") >= 5 and "/" in line})
mapped = [m for m in mapped if m.startswith("/")]
print(json.dumps({"mapped": mapped, "stdlib": stdlib, "site": sysconfig.get_paths()["purelib"]}))
"""

# Runs in the child as `python -I -S -c _BOOTSTRAP <json>`, before the program. Everything the hook uses is a default
# argument bound at definition (the program could rebind os.path, builtins or this module's names, not those).
_BOOTSTRAP = r"""
import json, os, resource, stat, struct, sys, traceback
_cfg = json.loads(sys.argv[1])
os.chdir(_cfg["work"])  # a chroot starts in "/"
_memory_exit = _cfg["memory_exit"]
if _cfg["nproc"]:
    resource.setrlimit(resource.RLIMIT_NPROC, (_cfg["nproc"], _cfg["nproc"]))
_work = os.path.realpath(_cfg["work"])
_read = tuple(os.path.realpath(p) for p in sys.path if p) + tuple(os.path.realpath(p) for p in _cfg["read"])
_blocked_modules = frozenset(("ctypes", "_ctypes", "_posixsubprocess", "_xxsubinterpreters", "cffi", "_cffi_backend"))
_listed = tuple(os.path.realpath(p) for p in _cfg["path"])  # site-packages: listed to find a package, not read

def _hook(event, args, _work=_work, _read=_read + (_work,), _listed=_listed, _lstat=os.lstat, _readlink=os.readlink,
          _getcwd=os.getcwd, _islnk=stat.S_ISLNK, _isinstance=isinstance, _str=str, _bytes=bytes, _int=int,
          _len=len, _PermissionError=PermissionError, _ImportError=ImportError, _OSError=OSError,
          _write_flags=os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND,
          _denied=frozenset(("os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                             "subprocess.Popen", "os.kill", "os.killpg", "signal.pthread_kill", "socket.__new__",
                             "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
                             "os.symlink", "os.link", "os.chmod", "os.chown", "os.chroot", "os.setxattr",
                             "os.removexattr", "resource.setrlimit", "resource.prlimit", "gc.get_objects",
                             "gc.get_referrers", "gc.get_referents", "ctypes.dlopen", "ctypes.dlsym",
                             "ctypes.cdata", "sys.setprofile", "sys.settrace")),
          _writes=frozenset(("os.mkdir", "os.rmdir", "os.remove", "os.rename", "os.truncate", "os.utime",
                             "shutil.rmtree")),
          _reads=frozenset(("os.listdir", "os.scandir", "os.chdir")),
          _blocked_modules=_blocked_modules):
    def resolved(path):
        if _isinstance(path, _bytes):
            path = path.decode("utf-8", "surrogateescape")
        path = _str(path)
        parts = (path if path.startswith("/") else _getcwd() + "/" + path).split("/")
        done, hops = [], 0
        while parts:
            part = parts.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                done = done[:-1]
                continue
            candidate = "/" + "/".join(done + [part])
            try:
                link = _islnk(_lstat(candidate).st_mode)
            except _OSError:
                link = False
            if link and hops < 40:
                hops += 1
                target = _readlink(candidate)
                parts = target.split("/") + parts
                if target.startswith("/"):
                    done = []
                continue
            done.append(part)
        return "/" + "/".join(done)

    def inside(path, roots):
        p = resolved(path)
        for root in roots:
            if p == root or p.startswith(root + "/"):
                return True
        return False

    if event in _denied or event.startswith("ctypes."):
        raise _PermissionError("sandbox: " + event + " is not allowed")
    if event == "import":
        if args[0].split(".")[0] in _blocked_modules:
            raise _ImportError("sandbox: import of " + args[0] + " is not allowed")
        if args[1] is not None and not inside(args[1], _read):
            raise _ImportError("sandbox: loading " + _str(args[1]) + " is not allowed")
    elif event == "open":
        path, mode, flags = args
        if _isinstance(path, _int) or path is None:
            return
        write = _isinstance(flags, _int) and flags & _write_flags
        for c in (mode if _isinstance(mode, _str) else ""):
            write = write or c in "wax+"
        if not inside(path, (_work,) if write else _read):
            raise _PermissionError("sandbox: opening " + _str(path) + (" for writing" if write else "")
                                   + " is not allowed")
    elif event in _writes:
        for path in args[:2]:
            if _isinstance(path, (_str, _bytes)) and not inside(path, (_work,)):
                raise _PermissionError("sandbox: " + event + " outside the working directory is not allowed")
    elif event in _reads and _len(args) and _isinstance(args[0], (_str, _bytes)) and not inside(args[0], _read) \
            and resolved(args[0]) not in _listed:
        raise _PermissionError("sandbox: " + event + " of " + _str(args[0]) + " is not allowed")

_source = open(os.path.join(_work, "main.py"), encoding="utf-8").read()
sys.path[:] = [p for p in sys.path if p] + list(_cfg["path"])
# ctypes is never loaded: once loaded, any of its classes (object.__subclasses__()) leads to its memmove. sympy reads
# sizeof(c_long) at import and numpy takes ctypes when it is there: a stand-in answers those two names and no other.
_stand_in = type(sys)("ctypes")
_stand_in.c_long, _stand_in.sizeof = type("c_long", (), {}), lambda _type, _size=struct.calcsize("l"): _size
sys.modules["ctypes"] = _stand_in
for _name in _cfg["preload"]:  # import the allowed packages the program names, before the hook
    if _name in _source:
        __import__(_name)
for _name in [m for m in sys.modules if m.split(".")[0] in _blocked_modules]:
    del sys.modules[_name]
sys.addaudithook(_hook)
del _hook, _cfg, _read, _listed, _stand_in
try:
    exec(compile(_source, "main.py", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
except MemoryError:
    os.write(2, b"MemoryError\n")
    os._exit(_memory_exit)
except SystemExit:
    raise
except BaseException:
    traceback.print_exc()
    sys.exit(1)
"""


@dataclass(frozen=True)
class SandboxLimits:
    """What one program may use. `packages`: importable third-party packages (only those installed are offered)."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    open_files: int = 64
    processes: int = 16
    output_bytes: int = 64 << 10
    packages: tuple[str, ...] = ("sympy", "mpmath", "numpy")
    namespaces: bool = True  # use unshare where it works
    filesystem: bool = True  # with namespaces: the read-only view (mount namespace, chroot, no capabilities)

    @classmethod
    def from_config(cls, cfg) -> SandboxLimits:
        """From a config block with `wall_seconds`, `cpu_seconds`, `memory_mb`, `output_bytes`, `packages`
        (conf/synthesize.yaml's `tool`, conf/protocol/tool.yaml's `sandbox`)."""
        return cls(
            wall_seconds=float(cfg["wall_seconds"]),
            cpu_seconds=int(cfg["cpu_seconds"]),
            memory_bytes=int(cfg["memory_mb"]) << 20,
            output_bytes=int(cfg["output_bytes"]),
            packages=tuple(cfg["packages"]),
        )


@dataclass(frozen=True)
class SandboxResult:
    """`status`: ok (exit 0), error (non-zero exit: an exception, a refused operation), timeout (wall clock or CPU),
    memory (MemoryError under the address-space limit), killed (ended by another signal)."""

    stdout: str
    stderr_tail: str
    status: str
    returncode: int | None
    seconds: float
    truncated: bool
    layers: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@functools.lru_cache(maxsize=1)
def unshare_command() -> tuple[str, ...] | None:
    """The namespace wrapper's argv prefix, or None where `unshare` is missing or namespaces are not permitted."""
    path = shutil.which("unshare", path=_SYSTEM_PATH)
    if path is None:
        return None
    probe = subprocess.run([path, *_UNSHARE, "true"], env={}, capture_output=True, timeout=10)
    return (path, *_UNSHARE) if probe.returncode == 0 else None


@functools.lru_cache(maxsize=8)
def _package_dirs(packages: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(names, sys.path entries, readable directories) of the allowed packages that are installed here: found by
    their import specs, never imported here."""
    names, paths, dirs = [], [], []
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        names.append(name)
        for location in spec.submodule_search_locations:
            dirs.append(location)
            libs = Path(location).parent / f"{name}.libs"  # wheels' vendored shared libraries (numpy.libs)
            dirs += [str(libs)] if libs.is_dir() else []
            paths.append(str(Path(location).parent))
    return tuple(names), tuple(dict.fromkeys(paths)), tuple(dirs)


@dataclass(frozen=True)
class _View:
    """What the program's root directory holds: `files` and `dirs` bound read-only at their own paths, `hidden`
    directories inside them covered by an empty one, and `links` (/ 's symlinks: lib -> usr/lib) recreated."""

    interpreter: str
    setpriv: str
    files: tuple[str, ...]
    dirs: tuple[str, ...]
    hidden: tuple[str, ...]
    links: tuple[tuple[str, str], ...]


def _outermost(paths) -> tuple[str, ...]:
    """The paths none of which lies inside another (binding a directory binds what is under it)."""
    kept: list[str] = []
    for path in sorted(set(paths)):
        if not any(path == k or path.startswith(k + "/") for k in kept):
            kept.append(path)
    return tuple(kept)


def _elf_interpreter(binary: str) -> str | None:
    """The dynamic loader an ELF executable names (its PT_INTERP header), which must resolve inside the view."""
    with open(binary, "rb") as f:
        data = f.read(1 << 16)
    if data[:4] != b"\x7fELF":
        return None
    order = "<" if data[5] == 1 else ">"
    wide = data[4] == 2  # 64-bit: e_phoff at 0x20, e_phentsize/e_phnum at 0x36; a header's p_offset/p_filesz
    phoff, (size, count) = (
        struct.unpack_from(order + ("Q" if wide else "I"), data, 0x20 if wide else 0x1C)[0],
        (struct.unpack_from(order + "HH", data, 0x36 if wide else 0x2A)),
    )
    for i in range(count):
        at = phoff + i * size
        if struct.unpack_from(order + "I", data, at)[0] == 3:  # PT_INTERP
            offset, length = struct.unpack_from(order + ("Q8x8xQ" if wide else "I8xI"), data, at + (8 if wide else 4))
            return data[offset : offset + length].rstrip(b"\0").decode()
    return None


def _view(packages: tuple[str, ...]) -> _View | None:
    """The read-only view for programs that may import `packages`: found by a probe interpreter (None where a
    tool it needs is missing)."""
    setpriv = shutil.which("setpriv", path=_SYSTEM_PATH)
    if setpriv is None or not Path("/proc/self/maps").is_file():
        return None
    names, paths, dirs = _package_dirs(packages)
    config = json.dumps({"path": paths, "packages": names, "skip": _PROBE_SKIPS})
    probe = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _PROBE, config], env={}, capture_output=True, text=True, timeout=60
    )
    if probe.returncode != 0:
        return None
    found = json.loads(probe.stdout.splitlines()[-1])
    interpreter, setpriv = os.path.realpath(sys.executable), os.path.realpath(setpriv)
    files, folders = [interpreter, setpriv], [*found["stdlib"], *dirs]
    for binary in (interpreter, setpriv):
        loader = _elf_interpreter(binary)
        folders += [os.path.realpath(os.path.dirname(loader))] if loader else []
    for mapped in found["mapped"]:
        parent = os.path.dirname(mapped)
        if mapped == interpreter:
            continue
        # a module alone in site-packages is bound alone, not the site-packages it lies in
        (files if parent in paths else folders).append(mapped if parent in paths else parent)
    folders = _outermost(os.path.realpath(f) for f in folders if os.path.isdir(f))
    site = os.path.realpath(found["site"])
    hidden = (site,) if os.path.isdir(site) and any(site.startswith(f + "/") for f in folders) else ()
    links = tuple((entry.name, os.readlink(entry.path)) for entry in os.scandir("/") if entry.is_symlink())
    return _View(interpreter, setpriv, tuple(dict.fromkeys(files)), folders, hidden, links)


def _fence_script(view: _View, work: Path, root: Path, uid: int | None) -> str:
    """The shell script that, in fresh namespaces, builds the view on `root`, enters it and runs "$@" without
    capabilities (as `uid` where given)."""
    q = shlex.quote

    def at(path: str) -> str:
        return q(f"{root}{path}")

    points = [*view.dirs, *(os.path.dirname(f) for f in view.files), str(work)]
    lines = [
        "set -e",
        f"mount -t tmpfs -o size=1m,mode=755,nosuid,nodev minimath-sandbox {q(str(root))}",
        "mkdir -p " + " ".join(at(p) for p in points),
    ]
    lines += [f"mount --bind -o ro,nosuid,nodev {q(d)} {at(d)}" for d in view.dirs]
    lines += [f": > {at(f)}; mount --bind -o ro,nodev {q(f)} {at(f)}" for f in view.files]
    lines += [f"mount -t tmpfs -o ro,size=4k,mode=555 hidden {at(h)}" for h in view.hidden]
    lines += [f"ln -s {q(target)} {at('/' + name)}" for name, target in view.links]
    lines += [f"mount --bind -o nosuid,nodev {q(str(work))} {at(str(work))}"]
    lines += [f"mount -o remount,ro {q(str(root))}"]
    user = f"--reuid={uid} --regid={uid} --clear-groups " if uid is not None else ""
    drop = "--no-new-privs --bounding-set=-all --inh-caps=-all "
    lines += [f'exec chroot {q(str(root))} {q(view.setpriv)} {drop}{user}"$@"']
    return "\n".join(lines)


def _fence_argv(view: _View, work: Path, root: Path) -> list[str]:
    """The argv prefix that runs a program inside the view: the namespaces, then the script."""
    uid = _NOBODY if os.geteuid() == 0 else None
    unshare = shutil.which("unshare", path=_SYSTEM_PATH)
    flags = _FENCE if uid is not None else ("--user", "--map-root-user", *_FENCE)
    shell = shutil.which("sh", path=_SYSTEM_PATH)
    return [unshare, *flags, shell, "-c", _fence_script(view, work, root, uid), "sh", view.interpreter]


@functools.lru_cache(maxsize=8)
def fenced_view(packages: tuple[str, ...]) -> _View | None:
    """The read-only view where it works here (probed once: a program is run through it), else None."""
    if unshare_command() is None:
        return None
    view = _view(packages)
    if view is None:
        return None
    result = _run("print(6 * 7)", SandboxLimits(wall_seconds=30.0, packages=packages), None, view, unshare_command())
    return view if result.stdout == "42\n" else None


def _limit_resources(limits: SandboxLimits):
    def apply() -> None:  # runs in the forked child before exec: only async-signal-tolerant calls
        for what, value in (
            (resource.RLIMIT_CPU, limits.cpu_seconds),
            (resource.RLIMIT_AS, limits.memory_bytes),
            (resource.RLIMIT_FSIZE, limits.file_bytes),
            (resource.RLIMIT_NOFILE, limits.open_files),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(what, (value, value + 1 if what == resource.RLIMIT_CPU else value))

    return apply


def _drain(stream, cap: int, keep_tail: bool, out: list) -> None:
    """Read `stream` to its end, keeping its first (or last) `cap` bytes; out = [bytes, truncated]."""
    kept, truncated = b"", False
    while chunk := stream.read(65536):
        kept += chunk
        if len(kept) > cap:
            truncated = True
            kept = kept[-cap:] if keep_tail else kept[:cap]
    out[:] = [kept, truncated]


def _status(returncode: int, timed_out: bool, cpu_seconds: float, limits: SandboxLimits) -> str:
    # CPU limit: SIGXCPU at the soft limit, or (a PID namespace's init ignores SIGXCPU) SIGKILL one second later
    if timed_out or returncode == -signal.SIGXCPU or (returncode != 0 and cpu_seconds >= limits.cpu_seconds):
        return "timeout"
    if returncode == _MEMORY_EXIT:
        return "memory"
    if returncode == 0:
        return "ok"
    return "killed" if returncode < 0 else "error"


def run_program(
    code: str, limits: SandboxLimits = SandboxLimits(), tmp_root: str | Path | None = None
) -> SandboxResult:
    """Run `code` as a script in the sandbox (see the module docstring); its private directory is made under
    `tmp_root` (default: the system's temporary directory) and removed afterwards."""
    wrapper = unshare_command() if limits.namespaces else None
    view = fenced_view(tuple(limits.packages)) if wrapper and limits.filesystem else None
    return _run(code, limits, tmp_root, view, wrapper)


def _layers(view: _View | None, wrapper: tuple[str, ...] | None) -> tuple[str, ...]:
    layers = ["subprocess", "clean_env", "isolated_python", "private_dir", "rlimits", "wall_clock", "audit_hook"]
    root = os.geteuid() == 0
    if view:
        layers += ["net_ns", "pid_ns", "mount_ns", "readonly_view", "no_capabilities", "rlimit_nproc"]
        layers += ["unprivileged_uid"] if root else ["user_ns"]
    else:
        layers += ["user_ns", "net_ns", "pid_ns"] if wrapper else []
        layers += ["rlimit_nproc"] if not root else []
    return tuple(layers)


def _run(
    code: str,
    limits: SandboxLimits,
    tmp_root: str | Path | None,
    view: _View | None,
    wrapper: tuple[str, ...] | None,
) -> SandboxResult:
    names, paths, dirs = _package_dirs(tuple(limits.packages))
    work = Path(tempfile.mkdtemp(prefix="minimath-sandbox-", dir=tmp_root))
    root = Path(f"{work}.root")  # the view's mount point: empty here, a tmpfs in the program's mount namespace
    try:
        (work / "main.py").write_text(code, encoding="utf-8")
        config = {
            "work": str(work),
            "nproc": limits.processes,
            "path": paths,
            "read": dirs,
            "preload": names,
            "memory_exit": _MEMORY_EXIT,
        }
        program = [*_PYTHON_FLAGS, "-c", _BOOTSTRAP, json.dumps(config)]
        if view:
            root.mkdir()
            if os.geteuid() == 0:
                os.chown(work, _NOBODY, _NOBODY)
            argv = [*_fence_argv(view, work, root), *program]
        else:
            argv = [*(wrapper or ()), sys.executable, *program]
        env = {
            "PATH": _SYSTEM_PATH,
            "HOME": str(work),
            "TMPDIR": str(work),
            "LANG": "C.UTF-8",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        start = time.monotonic()
        proc = subprocess.Popen(
            argv,
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
            preexec_fn=_limit_resources(limits),
        )
        out, err = [b"", False], [b"", False]
        readers = [
            threading.Thread(target=_drain, args=(proc.stdout, limits.output_bytes, False, out)),
            threading.Thread(target=_drain, args=(proc.stderr, limits.output_bytes, True, err)),
        ]
        for reader in readers:
            reader.start()
        timed_out = False
        try:
            _, status, usage = _wait(proc, limits.wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        for reader in readers:
            reader.join()
        proc.stdout.close()
        proc.stderr.close()
        seconds = time.monotonic() - start
        cpu = usage.ru_utime + usage.ru_stime
        return SandboxResult(
            stdout=out[0].decode("utf-8", "replace"),
            stderr_tail=err[0].decode("utf-8", "replace"),
            status=_status(proc.returncode, timed_out, cpu, limits),
            returncode=proc.returncode,
            seconds=round(seconds, 3),
            truncated=bool(out[1] or err[1]),
            layers=_layers(view, wrapper),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if root.is_dir():
            root.rmdir()


def _wait(proc: subprocess.Popen, timeout: float):
    """os.wait4 on the child with a deadline (its resource usage tells a CPU-limit kill from other deaths)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return pid, status, usage
        if time.monotonic() >= deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        time.sleep(0.01)


def run_programs(
    codes: Sequence[str], limits: SandboxLimits = SandboxLimits(), workers: int = 2, tmp_root: str | Path | None = None
) -> list[SandboxResult]:
    """`run_program` for each code, at most `workers` at a time; results in the order of `codes`."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda code: run_program(code, limits, tmp_root), codes))
