"""Run untrusted, model-written Python (a synthesized solution's program, later a ToRA-style tool call) in a
separate, fenced process, and say what happened: `run_program(code, limits) -> SandboxResult`.

Our process never evaluates or imports the program. It starts a fresh interpreter in isolated mode (`-I -S`: no
site-packages, no PYTHON* variables, no user directories) with an empty environment (an API key in ours never
reaches it), in a private temporary directory that is removed afterwards. Layers, outermost first — each one is
reported in `SandboxResult.layers` when it was active:

- `user_ns`, `net_ns`, `pid_ns`: where `unshare` can make unprivileged namespaces (util-linux; probed once), the
  program runs in a fresh network namespace (no interfaces but a downed loopback: nothing to connect to) and PID
  namespace (it sees no other process, and every process it may have started dies with it).
- `rlimits`: CPU seconds, address space (a huge allocation is a MemoryError, not a swapping machine), file size,
  open files, no core dumps — set in the child before exec; process count (`rlimit_nproc`) is set by the
  bootstrap once the namespace wrapper has forked, and is reported only when we are not root (the kernel does not
  apply RLIMIT_NPROC to root).
- `wall_clock`: a wall-clock limit after which the whole process group is killed.
- `audit_hook`: a bootstrap of ours, run before the program, installs a `sys.addaudithook` hook (which the code that
  follows cannot remove): no process creation (fork, exec, spawn, subprocess, system), no signals to others, no
  sockets, no `ctypes`, no symlinks or permission changes, no rlimit changes; files are readable only inside the
  private directory, the standard library and the allowed packages' directories, and writable only inside the
  private directory; no module is loaded from anywhere else. The hook reads nothing the program could rebind: every
  function it calls is bound when it is defined, and it is unreachable afterwards (gc introspection is refused).
- Output is read through pipes and cut to `limits.output_bytes` (stdout's head, stderr's tail).

A mount namespace (bubblewrap) would hide the filesystem rather than guard it; bwrap is not a pip package, so it is
not used, and the audit hook is the file guard everywhere.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import resource
import shutil
import signal
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

# Runs in the child as `python -I -S -c _BOOTSTRAP <json>`, before the program. Everything the hook uses is a default
# argument bound at definition (the program could rebind os.path, builtins or this module's names, not those).
_BOOTSTRAP = r"""
import json, os, resource, stat, sys, traceback
_cfg = json.loads(sys.argv[1])
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
for _name in _cfg["preload"]:  # sympy needs ctypes.c_long at import: import what the program names, then hide ctypes
    if _name in _source:
        __import__(_name)
for _name in [m for m in sys.modules if m.split(".")[0] in _blocked_modules]:
    del sys.modules[_name]
sys.addaudithook(_hook)
del _hook, _cfg, _read, _listed
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
    names, paths, dirs = _package_dirs(tuple(limits.packages))
    layers = ["subprocess", "clean_env", "isolated_python", "private_dir", "rlimits", "wall_clock", "audit_hook"]
    layers += ["user_ns", "net_ns", "pid_ns"] if wrapper else []
    layers += ["rlimit_nproc"] if os.geteuid() != 0 else []
    work = Path(tempfile.mkdtemp(prefix="minimath-sandbox-", dir=tmp_root))
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
        argv = [*(wrapper or ()), sys.executable, "-I", "-S", "-c", _BOOTSTRAP, json.dumps(config)]
        env = {
            "PATH": _SYSTEM_PATH,
            "HOME": str(work),
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
            layers=tuple(layers),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


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
