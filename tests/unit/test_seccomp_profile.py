"""Docker seccomp profile -> OCI linux.seccomp conversion, and its validation."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.runtime import seccomp
from dockyard.runtime.capabilities import DEFAULT_CAPABILITIES
from dockyard.runtime.seccomp import SeccompError, compile_filter, default_spec, spec_from_profile

REPO = Path(__file__).resolve().parents[2]
# shared/ sits beside the checkout (CI's layout); a clone elsewhere finds the workplace's copy.
REFERENCE = next(
    (
        p
        for p in (REPO.parent / "shared" / "reference", Path("/work/shared/reference"))
        if p.is_dir()
    ),
    REPO.parent / "shared" / "reference",
)

# Docker's default bounding set (docker-oci-config.json process.capabilities.bounding).
DEFAULT_CAPS = DEFAULT_CAPABILITIES
X86 = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def rules_for(spec: dict, name: str) -> list[dict]:
    return [r for r in spec["syscalls"] if name in r["names"]]


def flat(spec: dict) -> set[tuple]:
    """(name, action, errnoRet, args) for every syscall: what the filter means, minus grouping."""
    return {
        (n, r["action"], r.get("errnoRet"), json.dumps(r.get("args", []), sort_keys=True))
        for r in spec["syscalls"]
        for n in r["names"]
    }


def profile(*syscalls: dict, **top) -> dict:
    return {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": list(syscalls), **top}


# --- Docker's default profile ----------------------------------------------------------------


def test_packaged_profile_is_the_reference_one():
    packaged = REPO / "src/dockyard/runtime/seccomp_default.json"
    assert json.loads(packaged.read_text()) == json.loads(
        (REFERENCE / "seccomp-default.json").read_text()
    )


def test_default_matches_what_dockerd_generated():
    config = json.loads((REFERENCE / "docker-oci-config.json").read_text())
    ref = config["linux"]["seccomp"]
    assert config["process"]["capabilities"]["bounding"] == DEFAULT_CAPS
    mine = default_spec(DEFAULT_CAPS, arch="amd64", kernel_version=(6, 1))

    assert mine["defaultAction"] == ref["defaultAction"]
    assert mine["architectures"] == ref["architectures"] == X86
    # The old dockerd left defaultErrnoRet out, which means EPERM; the profile now says 1.
    assert ref.get("defaultErrnoRet", 1) == mine["defaultErrnoRet"] == 1

    # docker-oci-config.json comes from an older dockerd and profile. What differs, all of it
    # from profile updates, none from the conversion:
    newer_syscalls = {
        # added to the unconditional allow list since
        "cachestat",
        "fchmodat2",
        "futex_requeue",
        "futex_wait",
        "futex_wake",
        "getxattrat",
        "listmount",
        "listxattrat",
        "map_shadow_stack",
        "mseal",
        "name_to_handle_at",
        "pkey_alloc",
        "pkey_free",
        "pkey_mprotect",
        "removexattrat",
        "riscv_hwprobe",
        "setxattrat",
        "statmount",
        "uretprobe",
        # joined ptrace in the minKernel 4.8 rule
        "process_vm_readv",
        "process_vm_writev",
    }
    only_mine = {r for r in flat(mine) - flat(ref) if r[0] not in newer_syscalls}
    only_ref = flat(ref) - flat(mine)
    assert {r[0] for r in flat(mine) - flat(ref)} == newer_syscalls | {"socket"}
    for name in newer_syscalls:
        assert rules_for(mine, name) and all(not r.get("args") for r in rules_for(mine, name))
    # socket: allowed unconditionally before; now every family but AF_ALG (38) and AF_VSOCK (40).
    lt, eq, gt = ("SCMP_CMP_LT", 38), ("SCMP_CMP_EQ", 39), ("SCMP_CMP_GT", 40)
    assert only_mine == {
        ("socket", "SCMP_ACT_ALLOW", None, json.dumps([{"index": 0, "op": op, "value": v}]))
        for op, v in (lt, eq, gt)
    }
    # io_uring was dropped from the default profile (moby 25).
    assert only_ref == {
        ("socket", "SCMP_ACT_ALLOW", None, "[]"),
        ("io_uring_enter", "SCMP_ACT_ALLOW", None, "[]"),
        ("io_uring_register", "SCMP_ACT_ALLOW", None, "[]"),
        ("io_uring_setup", "SCMP_ACT_ALLOW", None, "[]"),
    }
    # Everything else is the same filter: the ~340 allowed names, personality's 5 values, the
    # clone namespace mask, clone3 -> ENOSYS, chroot (CAP_SYS_CHROOT), arch_prctl, modify_ldt.
    assert len(flat(mine) & flat(ref)) >= 340
    for name in ("personality", "clone", "clone3", "chroot", "ptrace", "arch_prctl", "modify_ldt"):
        assert {r for r in flat(mine) if r[0] == name} == {r for r in flat(ref) if r[0] == name}


def test_default_capability_filtering():
    spec = default_spec(DEFAULT_CAPS, arch="amd64", kernel_version=(6, 1))
    (clone,) = rules_for(spec, "clone")
    assert clone["args"] == [{"index": 0, "value": 0x7E020000, "op": "SCMP_CMP_MASKED_EQ"}]
    (clone3,) = rules_for(spec, "clone3")
    assert (clone3["action"], clone3["errnoRet"]) == ("SCMP_ACT_ERRNO", 38)
    for denied in ("mount", "umount2", "unshare", "setns", "keyctl", "reboot", "bpf", "syslog"):
        assert not rules_for(spec, denied), denied
    assert rules_for(spec, "chroot")  # CAP_SYS_CHROOT is a default cap

    # CAP_SYS_ADMIN: includes.caps turns on the unconditional rule, excludes.caps drops the
    # masked clone and clone3->ENOSYS rules.
    admin = default_spec([*DEFAULT_CAPS, "CAP_SYS_ADMIN"], arch="amd64", kernel_version=(6, 1))
    assert [r.get("args") for r in rules_for(admin, "clone")] == [None]
    assert [r["action"] for r in rules_for(admin, "clone3")] == ["SCMP_ACT_ALLOW"]
    assert rules_for(admin, "mount") and rules_for(admin, "unshare")


def test_capability_names_are_normalised():
    a = default_spec(["sys_admin", "cap_sys_chroot"], arch="amd64", kernel_version=(6, 1))
    b = default_spec(["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"], arch="amd64", kernel_version=(6, 1))
    assert a == b


def test_arches():
    arm = default_spec(DEFAULT_CAPS, arch="arm64", kernel_version=(6, 1))
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert rules_for(arm, "arm_fadvise64_64") and not rules_for(arm, "arch_prctl")
    assert default_spec(DEFAULT_CAPS, arch="aarch64", kernel_version=(6, 1)) == arm  # uname -m
    s390 = default_spec(DEFAULT_CAPS, arch="s390x", kernel_version=(6, 1))
    assert s390["architectures"] == ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]
    # excludes.arches drops the x86 ordering, includes.arches adds the s390 one
    assert [r["args"][0]["index"] for r in rules_for(s390, "clone")] == [1]
    riscv = default_spec(DEFAULT_CAPS, arch="riscv64", kernel_version=(6, 1))
    assert riscv["architectures"] == ["SCMP_ARCH_RISCV64"]  # no subArchitectures
    assert rules_for(riscv, "riscv_flush_icache")


def test_arch_defaults_to_host():
    machine = os.uname().machine
    if machine not in ("x86_64", "aarch64"):
        pytest.skip(f"no expectation written for {machine}")
    spec = default_spec(DEFAULT_CAPS)
    assert spec["architectures"][0] == {"x86_64": X86[0], "aarch64": "SCMP_ARCH_AARCH64"}[machine]


def test_min_kernel():
    old = default_spec(DEFAULT_CAPS, arch="amd64", kernel_version=(4, 7))
    new = default_spec(DEFAULT_CAPS, arch="amd64", kernel_version=(4, 8))
    assert not rules_for(old, "ptrace") and rules_for(new, "ptrace")
    assert rules_for(default_spec(DEFAULT_CAPS), "ptrace")  # the host runs kernel >= 4.8

    p = profile(
        {"names": ["a"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}},
        {"names": ["b"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
    )
    names = [
        [r["names"] for r in spec_from_profile(p, [], "amd64", k)["syscalls"]]
        for k in ((5, 9), (5, 10), (6, 0))
    ]
    assert names == [[["a"]], [["b"]], [["b"]]]


def test_includes_need_all_caps_excludes_any():
    p = profile(
        {"names": ["inc"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_A", "CAP_B"]}},
        {"names": ["exc"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_A", "CAP_B"]}},
    )

    def names(caps):
        return [r["names"][0] for r in spec_from_profile(p, caps, "amd64", (6, 1))["syscalls"]]

    assert names([]) == ["exc"]
    assert names(["CAP_A"]) == []
    assert names(["CAP_A", "CAP_B"]) == ["inc"]


def test_profile_is_not_mutated_and_output_is_a_copy():
    p = profile(
        {"name": "getcwd", "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "comment": "x"},
        {
            "names": ["x"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}],
        },
    )
    before = copy.deepcopy(p)
    spec = spec_from_profile(p, [], "amd64", (6, 1))
    assert p == before
    assert spec["syscalls"] == [
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {
            "names": ["x"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}],
        },
    ]
    spec["syscalls"][1]["names"].append("y")
    assert p == before


def test_oci_form_passes_through():
    ref = json.loads((REFERENCE / "docker-oci-config.json").read_text())["linux"]["seccomp"]
    assert spec_from_profile(ref, [], "arm64") == ref  # architectures are kept as given
    oci = {
        "defaultAction": "SCMP_ACT_KILL_PROCESS",
        "defaultErrnoRet": 5,
        "architectures": ["SCMP_ARCH_AARCH64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {
                "names": ["read"],
                "action": "SCMP_ACT_TRACE",
                "errnoRet": 3,
                "args": [{"index": 5, "value": 1, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}],
            }
        ],
    }
    assert spec_from_profile(oci, DEFAULT_CAPS) == oci


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (profile(defaultAction="SCMP_ACT_NOPE"), "unknown seccomp action 'SCMP_ACT_NOPE'"),
        ({"syscalls": []}, "defaultAction: unknown seccomp action None"),
        (profile({"names": ["x"], "action": "ALLOW"}), r"syscalls\[0\].action: unknown"),
        (
            profile(
                {
                    "names": ["x"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "op": "SCMP_CMP_XX"}],
                }
            ),
            "unknown seccomp operator 'SCMP_CMP_XX'",
        ),
        (
            profile(
                {
                    "names": ["x"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 6, "op": "SCMP_CMP_EQ"}],
                }
            ),
            r"syscalls\[0\].args\[0\]: index must be 0..5, got 6",
        ),
        (
            profile(
                {
                    "names": ["x"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}],
                }
            ),
            "unsigned 64-bit",
        ),
        (profile(architectures=["SCMP_ARCH_Z80"]), "unknown seccomp architecture 'SCMP_ARCH_Z80'"),
        (profile(architectures=["x86_64"]), "unknown seccomp architecture 'x86_64'"),
        (profile(archMap=[{"architecture": "SCMP_ARCH_FOO"}]), "unknown seccomp architecture"),
        (
            profile(architectures=X86, archMap=[{"architecture": X86[0]}]),
            "both 'architectures' and 'archMap'",
        ),
        (profile({"names": [], "action": "SCMP_ACT_ALLOW"}), "non-empty list"),
        (
            profile({"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}),
            "either 'name' or 'names'",
        ),
        (profile({"names": ["x"], "action": "SCMP_ACT_ERRNO", "errnoRet": "1"}), "errnoRet"),
        (
            profile(
                {"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}}
            ),
            "invalid kernel version 'four'",
        ),
        (
            profile({"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": "CAP_X"}}),
            "caps",
        ),
        (profile(flags=["SECCOMP_FILTER_FLAG_NOPE"]), "unknown seccomp flag"),
        ([], "must be a JSON object"),
    ],
)
def test_validation_errors(bad, message):
    with pytest.raises(SeccompError, match=message):
        spec_from_profile(bad, DEFAULT_CAPS, "amd64", (6, 1))


def test_bad_host_arch():
    with pytest.raises(SeccompError, match="unsupported architecture 'pdp11'"):
        spec_from_profile(profile(), [], arch="pdp11")
    assert issubclass(SeccompError, ValueError)


# --- compile_filter (builds the libseccomp context; loading is in the integration tests) ----


def test_compile_default_profile():
    spec = default_spec(DEFAULT_CAPS)
    with compile_filter(spec) as f:
        assert isinstance(f, seccomp.SeccompFilter)
    with pytest.raises(SeccompError, match="released"):
        f.load()
    f.release()  # idempotent


def test_compile_skips_unknown_syscalls_and_default_action_rules():
    spec = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": X86,
        "syscalls": [
            {"names": ["no_such_syscall", "read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},  # == default
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 38,
                "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},  # same index: split
                ],
            },
        ],
    }
    compile_filter(spec).release()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}],
            },
            "SCMP_ACT_NOTIFY is not supported",
        ),
        ({"defaultAction": "SCMP_ACT_NOTIFY"}, "SCMP_ACT_NOTIFY is not supported"),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            },
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_SHEB"]},
            "not supported by libseccomp",
        ),
        (json.loads((REPO / "src/dockyard/runtime/seccomp_default.json").read_text()), "OCI form"),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "X"}]},
            "unknown",
        ),
    ],
)
def test_compile_errors(spec, message):
    with pytest.raises(SeccompError, match=message):
        compile_filter(spec)


def test_compile_flags():
    flags = [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    ]
    compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "flags": flags}).release()


def test_import_is_cheap():
    # No json parsing, no dlopen, no ctypes at import: the shim imports this module.
    code = (
        "import sys, dockyard.runtime.seccomp as s\n"
        "assert s._default_profile is None and s._lib is None\n"
        "assert 'ctypes' not in sys.modules and 'json' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
