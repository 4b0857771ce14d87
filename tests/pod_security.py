"""The Pod Security Standards' checks (baseline and restricted, as the API server's Pod
Security Admission applies them at v1.31 and later), as a pure function over a pod spec.

Written from https://kubernetes.io/docs/concepts/security/pod-security-standards/; the
Windows-only checks (hostProcess) are included, the profile's "Version" column is not
(a pod that passes at v1.31 passes at every later version of these rules). Tests run it over
what the worker builds, since the admission controller itself runs only in a real API
server."""

from collections.abc import Iterator, Mapping
from typing import Any, Literal

Level = Literal["baseline", "restricted"]

BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
RESTRICTED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def _containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            yield f"{field}[{container.get('name')}]", container


def _baseline(spec: Mapping[str, Any], annotations: Mapping[str, str]) -> Iterator[str]:
    pod_context = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            yield f"{field} is true"
    if (pod_context.get("windowsOptions") or {}).get("hostProcess"):
        yield "pod windowsOptions.hostProcess is true"
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            yield f"volume {volume.get('name')} is a hostPath"
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield f"sysctl {sysctl.get('name')} is not a safe one"
    yield from _seccomp_not_unconfined("pod", pod_context)
    yield from _apparmor_and_selinux("pod", pod_context)
    for key, value in annotations.items():
        if key.startswith(APPARMOR_ANNOTATION) and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            yield f"annotation {key} is {value}"
    for where, container in _containers(spec):
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            yield f"{where} is privileged"
        if (context.get("windowsOptions") or {}).get("hostProcess"):
            yield f"{where} windowsOptions.hostProcess is true"
        added = set((context.get("capabilities") or {}).get("add") or [])
        if added - BASELINE_CAPABILITIES:
            yield f"{where} adds capabilities {sorted(added - BASELINE_CAPABILITIES)}"
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                yield f"{where} uses hostPort {port['hostPort']}"
        if context.get("procMount", "Default") != "Default":
            yield f"{where} procMount is {context['procMount']}"
        yield from _seccomp_not_unconfined(where, context)
        yield from _apparmor_and_selinux(where, context)


def _seccomp_not_unconfined(where: str, context: Mapping[str, Any]) -> Iterator[str]:
    if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
        yield f"{where} seccompProfile is Unconfined"


def _apparmor_and_selinux(where: str, context: Mapping[str, Any]) -> Iterator[str]:
    apparmor = (context.get("appArmorProfile") or {}).get("type")
    if apparmor not in (None, "RuntimeDefault", "Localhost"):
        yield f"{where} appArmorProfile is {apparmor}"
    selinux = context.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in SELINUX_TYPES:
        yield f"{where} seLinuxOptions.type is {selinux['type']}"
    for field in ("user", "role"):
        if selinux.get(field):
            yield f"{where} sets seLinuxOptions.{field}"


def _restricted(spec: Mapping[str, Any]) -> Iterator[str]:
    pod_context = spec.get("securityContext") or {}
    for volume in spec.get("volumes") or []:
        sources = set(volume) - {"name"}
        if not sources <= RESTRICTED_VOLUME_SOURCES:
            yield f"volume {volume.get('name')} is of type {sorted(sources)}"
    if pod_context.get("runAsUser") == 0:
        yield "pod runAsUser is 0"
    pod_non_root = pod_context.get("runAsNonRoot")
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    for where, container in _containers(spec):
        context = container.get("securityContext") or {}
        if context.get("allowPrivilegeEscalation") is not False:
            yield f"{where} does not set allowPrivilegeEscalation to false"
        non_root = context.get("runAsNonRoot", pod_non_root)
        if non_root is not True:
            yield f"{where} does not run as non-root (runAsNonRoot)"
        if context.get("runAsUser") == 0:
            yield f"{where} runAsUser is 0"
        seccomp = (context.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            yield f"{where} seccompProfile is {seccomp}, not RuntimeDefault or Localhost"
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            yield f"{where} does not drop ALL capabilities"
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            yield f"{where} adds capabilities {sorted(added)}"


def violations(
    spec: Mapping[str, Any], level: Level, annotations: Mapping[str, str] | None = None
) -> list[str]:
    """What in the pod ``spec`` the Pod Security Standard ``level`` forbids (restricted
    includes baseline); empty when the pod is admitted."""
    found = list(_baseline(spec, annotations or {}))
    if level == "restricted":
        found.extend(_restricted(spec))
    return found
