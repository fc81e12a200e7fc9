"""Seccomp: Docker profiles -> OCI ``linux.seccomp`` -> libseccomp filters.

Three steps, kept apart so each can run where it must:

* ``spec_from_profile`` is pure logic (done by the daemon/spec generator), the same
  conversion dockerd does: pick the host's architectures and drop the rules whose
  ``includes``/``excludes`` do not match the container's capabilities, arch and kernel.
* ``compile_filter`` builds the libseccomp context. It must run before pivot_root: it
  dlopens libseccomp.so from the host filesystem.
* ``SeccompFilter.load`` installs it later (after pivot_root), touching no file and
  importing nothing.

Stdlib + ctypes only; ctypes and json are imported lazily so importing this module is cheap.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing and collections.abc cost more to import than this module
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

__all__ = [
    "SeccompError",
    "SeccompFilter",
    "compile_filter",
    "default_spec",
    "spec_from_profile",
]


class SeccompError(ValueError):
    """A seccomp profile or spec is invalid, or libseccomp refused it."""


# --- names and numbers (libseccomp's seccomp.h, the OCI runtime-spec, the kernel) -----------

EPERM = 1
_MAX_ARGS = 6  # syscall arguments 0..5

# Actions: value of the action without its 16-bit data (errno / trace message).
_ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": 0x00000000,  # = KILL_THREAD
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
}
_ACTIONS_WITH_DATA = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")

# enum scmp_compare
_OPS: dict[str, int] = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# enum scmp_filter_attr (libseccomp >= 2.5)
_ATTR_CTL_NNP = 3
_ATTR_CTL_TSYNC = 4
_ATTR_CTL_LOG = 6
_ATTR_CTL_SSB = 7

# OCI flags libseccomp can express; WAIT_KILLABLE_RECV needs libseccomp 2.6 + notify.
_FLAG_ATTRS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": _ATTR_CTL_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": _ATTR_CTL_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": _ATTR_CTL_SSB,
}
_KNOWN_FLAGS = {*_FLAG_ATTRS, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}

# The OCI architecture names (SCMP_ARCH_<libseccomp name in upper case>).
_ARCHES = frozenset(
    "SCMP_ARCH_" + a
    for a in ("X86", "X86_64", "X32", "ARM", "AARCH64", "LOONGARCH64", "M68K", "MIPS", "MIPS64",
              "MIPS64N32", "MIPSEL", "MIPSEL64", "MIPSEL64N32", "PPC", "PPC64", "PPC64LE", "S390",
              "S390X", "PARISC", "PARISC64", "RISCV64", "SH", "SHEB")
)  # fmt: skip

# Go's GOARCH (what profiles say in includes/excludes.arches) -> the native seccomp arch,
# i.e. the archMap entry dockerd picks for that host.
_GOARCH_NATIVE = {
    "386": "SCMP_ARCH_X86",
    "amd64": "SCMP_ARCH_X86_64",
    "arm": "SCMP_ARCH_ARM",
    "arm64": "SCMP_ARCH_AARCH64",
    "loong64": "SCMP_ARCH_LOONGARCH64",
    "mips": "SCMP_ARCH_MIPS",
    "mipsle": "SCMP_ARCH_MIPSEL",
    "mips64": "SCMP_ARCH_MIPS64",
    "mips64le": "SCMP_ARCH_MIPSEL64",
    "ppc": "SCMP_ARCH_PPC",
    "ppc64": "SCMP_ARCH_PPC64",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "riscv64": "SCMP_ARCH_RISCV64",
    "s390x": "SCMP_ARCH_S390X",
}

# uname -m -> GOARCH, for the host.
_MACHINE_GOARCH = {
    "x86_64": "amd64",
    "i386": "386",
    "i486": "386",
    "i586": "386",
    "i686": "386",
    "aarch64": "arm64",
    "armv6l": "arm",
    "armv7l": "arm",
    "armv8l": "arm",
    "loongarch64": "loong64",
    "mips64el": "mips64le",
    "mipsel": "mipsle",
}


def host_goarch(machine: str | None = None) -> str:
    """The GOARCH name of `machine` (default: this host, as platform.machine() reports it)."""
    m = machine if machine is not None else os.uname().machine  # platform.machine() is this
    if m in _GOARCH_NATIVE:
        return m
    if m in _MACHINE_GOARCH:
        return _MACHINE_GOARCH[m]
    raise SeccompError(f"unsupported architecture {m!r}")


def host_kernel_version() -> tuple[int, int]:
    return _parse_kernel(os.uname().release, "host kernel release")


def _parse_kernel(text: str, what: str) -> tuple[int, int]:
    # "6.1.0-18-amd64" -> (6, 1); profiles say "4.8".
    parts = str(text).split(".")
    try:
        major = int(parts[0])
        minor = int("".join(c for c in parts[1].split("-")[0] if c.isdigit()) or "x")
    except (IndexError, ValueError):
        raise SeccompError(f"invalid kernel version {text!r} in {what}") from None
    return major, minor


def _normalize_cap(cap: str) -> str:
    c = cap.upper()
    return c if c.startswith("CAP_") else "CAP_" + c


# --- profile -> OCI spec ---------------------------------------------------------------------


def spec_from_profile(
    profile: Mapping[str, Any],
    capabilities: Iterable[str],
    arch: str | None = None,
    kernel_version: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Convert a Docker seccomp profile (or an OCI ``linux.seccomp``) into OCI form.

    Same rules as dockerd: ``architectures`` = the archMap entry of the host's native arch plus
    its subArchitectures; a rule is kept only if its ``excludes`` do not match (any excluded cap
    held, arch equal, kernel >= minKernel) and its ``includes`` all do (all caps held, arch
    listed, kernel >= minKernel). ``arch`` is a GOARCH name (amd64, arm64, ...) or a uname -m
    name; ``capabilities`` are the container's bounding set. OCI input passes through, validated.
    """
    if not isinstance(profile, dict):
        raise SeccompError("seccomp profile must be a JSON object")
    goarch = host_goarch(arch)
    caps = {_normalize_cap(c) for c in capabilities}
    kernel = kernel_version  # the host's is read only if a rule has a minKernel

    default_action = _check_action(profile.get("defaultAction"), "defaultAction")
    if profile.get("architectures") and profile.get("archMap"):
        raise SeccompError("seccomp profile has both 'architectures' and 'archMap'; use one")

    arches: list[str] = [_check_arch(a) for a in _list(profile, "architectures")]
    native = _GOARCH_NATIVE[goarch]
    for entry in _list(profile, "archMap"):
        if not isinstance(entry, dict):
            raise SeccompError("archMap entries must be objects")
        main = _check_arch(entry.get("architecture"))
        subs = [_check_arch(a) for a in entry.get("subArchitectures") or []]
        if main == native:
            arches += [main, *subs]

    spec: dict[str, Any] = {"defaultAction": default_action}
    if profile.get("defaultErrnoRet") is not None:
        spec["defaultErrnoRet"] = _check_u16(profile["defaultErrnoRet"], "defaultErrnoRet")
    if arches:
        spec["architectures"] = arches
    flags = _list(profile, "flags")
    for f in flags:
        if f not in _KNOWN_FLAGS:
            raise SeccompError(f"unknown seccomp flag {f!r}")
    if flags:
        spec["flags"] = list(flags)
    for key in ("listenerPath", "listenerMetadata"):
        if profile.get(key):
            spec[key] = profile[key]

    syscalls: list[dict[str, Any]] = []
    for i, rule in enumerate(_list(profile, "syscalls")):
        where = f"syscalls[{i}]"
        if not isinstance(rule, dict):
            raise SeccompError(f"{where} must be an object")
        names = _check_names(rule, where)
        action = _check_action(rule.get("action"), f"{where}.action")
        args = [_check_arg(a, f"{where}.args[{j}]") for j, a in enumerate(rule.get("args") or [])]
        # Validate the filters even when the rule ends up dropped: a typo must not hide.
        inc = _check_filter(rule.get("includes"), f"{where}.includes")
        exc = _check_filter(rule.get("excludes"), f"{where}.excludes")

        if exc.get("arches") and goarch in exc["arches"]:
            continue
        if exc.get("caps") and any(_normalize_cap(c) in caps for c in exc["caps"]):
            continue
        if exc.get("minKernel") is not None:
            kernel = kernel or host_kernel_version()
            if kernel >= exc["minKernel"]:
                continue
        if inc.get("arches") and goarch not in inc["arches"]:
            continue
        if inc.get("caps") and not all(_normalize_cap(c) in caps for c in inc["caps"]):
            continue
        if inc.get("minKernel") is not None:
            kernel = kernel or host_kernel_version()
            if kernel < inc["minKernel"]:
                continue

        out: dict[str, Any] = {"names": names, "action": action}
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = _check_u16(rule["errnoRet"], f"{where}.errnoRet")
        if args:
            out["args"] = args
        syscalls.append(out)
    spec["syscalls"] = syscalls
    return spec


_default_profile: dict[str, Any] | None = None


def default_profile() -> dict[str, Any]:
    """Docker's default profile (the packaged seccomp_default.json), parsed once, on demand."""
    global _default_profile
    if _default_profile is None:
        import json

        path = os.path.join(os.path.dirname(__file__), "seccomp_default.json")
        with open(path, "rb") as f:
            _default_profile = json.load(f)
    return _default_profile


def default_spec(
    capabilities: Iterable[str],
    arch: str | None = None,
    kernel_version: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` dockerd would generate for these capabilities."""
    return spec_from_profile(default_profile(), capabilities, arch, kernel_version)


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    v = obj.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise SeccompError(f"{key!r} must be a list")
    return v


def _check_action(action: Any, where: str) -> str:
    if action not in _ACTIONS:
        raise SeccompError(
            f"{where}: unknown seccomp action {action!r} (expected one of {', '.join(_ACTIONS)})"
        )
    return action


def _check_arch(name: Any) -> str:
    if name not in _ARCHES:
        raise SeccompError(f"unknown seccomp architecture {name!r} (expected SCMP_ARCH_...)")
    return name


def _check_u16(v: Any, where: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0xFFFF:
        raise SeccompError(f"{where}: must be an integer in 0..65535, got {v!r}")
    return v


def _check_u64(v: Any, where: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 64:
        raise SeccompError(f"{where}: must be an unsigned 64-bit integer, got {v!r}")
    return v


def _check_names(rule: Mapping[str, Any], where: str) -> list[str]:
    names = rule.get("names")
    if rule.get("name"):  # the pre-"names" profile format
        if names:
            raise SeccompError(f"{where}: use either 'name' or 'names'")
        names = [rule["name"]]
    if not isinstance(names, list) or not names:
        raise SeccompError(f"{where}: 'names' must be a non-empty list of syscall names")
    for n in names:
        if not isinstance(n, str) or not n:
            raise SeccompError(f"{where}: bad syscall name {n!r}")
    return list(names)


def _check_arg(arg: Any, where: str) -> dict[str, Any]:
    if not isinstance(arg, dict):
        raise SeccompError(f"{where} must be an object")
    index = arg.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < _MAX_ARGS:
        raise SeccompError(f"{where}: index must be 0..{_MAX_ARGS - 1}, got {index!r}")
    op = arg.get("op")
    if op not in _OPS:
        raise SeccompError(
            f"{where}: unknown seccomp operator {op!r} (expected one of {', '.join(_OPS)})"
        )
    out = {"index": index, "value": _check_u64(arg.get("value", 0), f"{where}.value")}
    if arg.get("valueTwo"):
        out["valueTwo"] = _check_u64(arg["valueTwo"], f"{where}.valueTwo")
    out["op"] = op
    return out


def _check_filter(f: Any, where: str) -> dict[str, Any]:
    if f is None:
        return {}
    if not isinstance(f, dict):
        raise SeccompError(f"{where} must be an object")
    out: dict[str, Any] = {}
    for key in ("caps", "arches"):
        v = f.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise SeccompError(f"{where}.{key} must be a list of strings")
        out[key] = v
    if f.get("minKernel"):
        out["minKernel"] = _parse_kernel(f["minKernel"], f"{where}.minKernel")
    return out


# --- libseccomp (ctypes) ---------------------------------------------------------------------


class _Lib:
    """libseccomp, dlopened once (at the first compile), functions resolved up front."""

    def __init__(self) -> None:
        import ctypes

        try:
            lib = ctypes.CDLL("libseccomp.so.2")
        except OSError as e:
            raise SeccompError(f"libseccomp is not available: {e}") from None
        c_u32, c_int, c_void_p = ctypes.c_uint32, ctypes.c_int, ctypes.c_void_p

        class ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
            _fields_ = [
                ("arg", ctypes.c_uint),
                ("op", c_int),
                ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64),
            ]

        def fn(name: str, restype: Any, *argtypes: Any) -> Any:
            f = getattr(lib, name)
            f.restype, f.argtypes = restype, list(argtypes)
            return f

        self.lib = lib
        self.ArgCmp = ArgCmp
        self.init = fn("seccomp_init", c_void_p, c_u32)
        self.release = fn("seccomp_release", None, c_void_p)
        self.load = fn("seccomp_load", c_int, c_void_p)
        self.export_bpf = fn("seccomp_export_bpf", c_int, c_void_p, c_int)
        self.attr_set = fn("seccomp_attr_set", c_int, c_void_p, c_int, c_u32)
        self.arch_add = fn("seccomp_arch_add", c_int, c_void_p, c_u32)
        self.arch_resolve = fn("seccomp_arch_resolve_name", c_u32, ctypes.c_char_p)
        self.syscall_resolve = fn("seccomp_syscall_resolve_name", c_int, ctypes.c_char_p)
        self.rule_add_array = fn(
            "seccomp_rule_add_array", c_int, c_void_p, c_u32, c_int, ctypes.c_uint, c_void_p
        )
        self.syscalls: dict[str, int] = {}  # name -> native number (or negative pseudo number)

    def resolve(self, name: str) -> int:
        nr = self.syscalls.get(name)
        if nr is None:
            nr = self.syscalls[name] = self.syscall_resolve(name.encode())
        return nr


_NR_SCMP_ERROR = -1
_lib: _Lib | None = None


def _get_lib() -> _Lib:
    global _lib
    if _lib is None:
        _lib = _Lib()
    return _lib


def _action_value(action: str, errno_ret: int | None) -> int:
    if action == "SCMP_ACT_NOTIFY":
        raise SeccompError("SCMP_ACT_NOTIFY is not supported: dockyard has no seccomp notify agent")
    value = _ACTIONS[action]
    if action in _ACTIONS_WITH_DATA:
        value |= (EPERM if errno_ret is None else errno_ret) & 0xFFFF
    return value


class SeccompFilter:
    """A compiled libseccomp context, ready to be loaded into the calling process."""

    def __init__(self, lib: _Lib, ctx: int) -> None:
        self._lib = lib
        self._ctx: int | None = ctx
        # Bound now so load() runs no lookups (and no imports) after pivot_root.
        self._load_fn = lib.load
        self._release_fn = lib.release
        self._strerror = os.strerror

    def load(self) -> None:
        """Install the filter in the calling thread/process (seccomp_load).

        Without no_new_privs set by the caller this needs CAP_SYS_ADMIN.
        """
        if self._ctx is None:
            raise SeccompError("seccomp filter already released")
        rc = self._load_fn(self._ctx)
        if rc < 0:
            raise OSError(-rc, f"seccomp_load: {self._strerror(-rc)}")

    def export(self) -> bytes:
        """The classic BPF program libseccomp would load (seccomp_export_bpf)."""
        if self._ctx is None:
            raise SeccompError("seccomp filter already released")
        fd = os.memfd_create("seccomp-bpf")
        try:
            rc = self._lib.export_bpf(self._ctx, fd)
            if rc < 0:
                raise OSError(-rc, f"seccomp_export_bpf: {self._strerror(-rc)}")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def release(self) -> None:
        """Free the libseccomp context (idempotent)."""
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            self._release_fn(ctx)

    def __enter__(self) -> SeccompFilter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


class BpfFilter:
    """A filter already compiled to classic BPF (from the cache), loaded with seccomp(2)."""

    def __init__(self, program: bytes) -> None:
        import ctypes

        if not program or len(program) % 8:
            raise SeccompError("malformed cached seccomp program")

        class Fprog(ctypes.Structure):  # struct sock_fprog
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

        # Everything load() needs is built now: after pivot_root nothing may be imported.
        self._program = program
        self._fprog = Fprog(len(program) // 8, program)
        self._pointer = ctypes.byref(self._fprog)
        self._prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
        self._get_errno = ctypes.get_errno

    def load(self) -> None:
        # PR_SET_SECCOMP (22), SECCOMP_MODE_FILTER (2): what seccomp_load does without flags.
        if self._prctl(22, 2, self._pointer, 0, 0) != 0:
            err = self._get_errno()
            raise OSError(err, f"seccomp: {os.strerror(err)}")

    def release(self) -> None:
        return None


def compile_filter(
    spec_seccomp: Mapping[str, Any], cache_dir: str | None = None
) -> SeccompFilter | BpfFilter:
    """The filter for `spec_seccomp`; with `cache_dir`, compiled once and kept as BPF.

    libseccomp spends milliseconds building the program for three architectures on every
    container start; the same spec always gives the same program, so it is kept by the
    spec's digest (in a root-only state directory). Specs with flags load through libseccomp.
    """
    if not cache_dir or not isinstance(spec_seccomp, dict) or spec_seccomp.get("flags"):
        return _compile(spec_seccomp)
    import hashlib
    import json

    key = hashlib.sha256(json.dumps(spec_seccomp, sort_keys=True).encode()).hexdigest()
    path = os.path.join(cache_dir, f"{key}.bpf")
    try:
        with open(path, "rb") as f:
            return BpfFilter(f.read())
    except FileNotFoundError:
        pass
    compiled = _compile(spec_seccomp)
    try:
        program = compiled.export()
    finally:
        compiled.release()
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(program)
    os.rename(tmp, path)
    return BpfFilter(program)


def _compile(spec_seccomp: Mapping[str, Any]) -> SeccompFilter:
    """Build a libseccomp context from an OCI ``linux.seccomp`` (runc's semantics).

    Unknown syscall names are skipped, rules whose action is the default are dropped (the
    default already applies), and a rule with several comparisons on one argument becomes one
    rule per comparison (libseccomp refuses them in one rule). no_new_privs is left to the
    caller (SCMP_FLTATR_CTL_NNP = 0).
    """
    if not isinstance(spec_seccomp, dict):
        raise SeccompError("linux.seccomp must be a JSON object")
    rules = spec_seccomp.get("syscalls") or []
    if "archMap" in spec_seccomp or any(
        isinstance(r, dict) and (r.get("includes") or r.get("excludes")) for r in rules
    ):
        raise SeccompError("compile_filter takes OCI form; convert with spec_from_profile first")
    # Validation and normalisation: the conversion's code path, with nothing left to filter.
    spec = spec_from_profile(spec_seccomp, (), kernel_version=(0, 0))
    lib = _get_lib()
    default = _action_value(spec["defaultAction"], spec.get("defaultErrnoRet"))
    ctx = lib.init(default)
    if not ctx:
        raise SeccompError(f"seccomp_init refused default action {spec['defaultAction']}")
    filt = SeccompFilter(lib, ctx)
    try:
        _check_rc(lib.attr_set(ctx, _ATTR_CTL_NNP, 0), "disabling no_new_privs")
        for flag in spec.get("flags", ()):
            if flag not in _FLAG_ATTRS:
                raise SeccompError(f"seccomp flag {flag} is not supported")
            _check_rc(lib.attr_set(ctx, _FLAG_ATTRS[flag], 1), f"setting {flag}")
        for name in spec.get("architectures", ()):
            token = lib.arch_resolve(name[len("SCMP_ARCH_") :].lower().encode())
            if not token:
                raise SeccompError(f"architecture {name} is not supported by libseccomp")
            rc = lib.arch_add(ctx, token)
            if rc != -17:  # -EEXIST: the native arch is already in a new context
                _check_rc(rc, f"adding architecture {name}")
        for rule in spec["syscalls"]:
            _add_rule(lib, ctx, default, rule)
    except BaseException:
        filt.release()
        raise
    return filt


def _add_rule(lib: _Lib, ctx: int, default: int, rule: Mapping[str, Any]) -> None:
    action = _action_value(rule["action"], rule.get("errnoRet"))
    if action == default:
        return  # libseccomp rejects it (EACCES) and it would change nothing
    args = rule.get("args") or []
    cmps = [lib.ArgCmp(a["index"], _OPS[a["op"]], a["value"], a.get("valueTwo", 0)) for a in args]
    # libseccomp refuses two comparisons on one argument in a rule; runc then falls back to
    # one rule per comparison (ORed), and so do we.
    shared_index = len({a["index"] for a in args}) != len(args)
    groups = [[c] for c in cmps] if shared_index else [cmps]
    arrays = [((lib.ArgCmp * len(g))(*g), len(g)) for g in groups]
    for name in rule["names"]:
        nr = lib.resolve(name)
        if nr == _NR_SCMP_ERROR:
            continue  # unknown to this libseccomp: skipped, as runc does
        for array, n in arrays:
            rc = lib.rule_add_array(ctx, action, nr, n, array if n else None)
            _check_rc(rc, f"adding rule for {name}")


def _check_rc(rc: int, what: str) -> None:
    if rc < 0:
        raise SeccompError(f"libseccomp failed {what}: {os.strerror(-rc)}")
