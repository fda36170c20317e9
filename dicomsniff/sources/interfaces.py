"""Network interfaces, capture helpers and kernel filters: what ``dicomsniff live -i`` needs
to know before it starts capturing, and the errors it reports in one line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

SYS_NET = Path("/sys/class/net")


HELPERS = ("tcpdump", "dumpcap")


class LiveError(Exception):
    """The capture cannot start (or stopped by itself): one line for the user, exit status 2."""


class NoPermission(LiveError):
    """The process may not capture on the interface."""


class NoSuchInterface(LiveError):
    """The interface does not exist; the message lists those that do."""


class BadFilter(LiveError):
    """libpcap refused the BPF filter expression."""


def permission_hint(iface: str, helper: str | None) -> str:
    """How to get permission to capture: the one line the user needs."""
    dumpcap = find_helper("dumpcap") or "/usr/bin/dumpcap"
    what = f" (tried {helper})" if helper else ""
    return (f"no permission to capture on {iface}{what}: run as root, or grant the capture "
            f"helper the capabilities (sudo setcap cap_net_raw,cap_net_admin=eip {dumpcap}) "
            "or add your user to the wireshark group (sudo usermod -aG wireshark $USER, then "
            "log in again)")


def list_interfaces() -> list[str]:
    """Interfaces that exist in this network namespace (``ip netns exec`` remounts /sys)."""
    try:
        names = sorted(p.name for p in SYS_NET.iterdir())
    except OSError:
        names = []
    if names:
        return names
    tcpdump = find_helper("tcpdump")
    if tcpdump is None:
        return []
    try:
        out = subprocess.run([tcpdump, "-D"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    # "1.eth0 [Up, Running, Connected]"
    return [m.group(1) for m in re.finditer(r"^\d+\.(\S+)", out, re.M)]


def interface_exists(iface: str) -> bool | None:
    """True/False from /sys/class/net; None when that cannot tell (no sysfs, 'any', an index)."""
    if iface == "any" or iface.isdigit() or not SYS_NET.is_dir():
        return None
    return (SYS_NET / iface).exists()


def is_ethernet(iface: str) -> bool:
    """Whether frames on ``iface`` may carry 802.1Q tags (ARPHRD_ETHER), for the filter."""
    try:
        return (SYS_NET / iface / "type").read_text().strip() == "1"
    except OSError:
        return False


def build_filter(*, ports: Iterable[int] = (), hosts: Iterable[str] = (), bpf: str | None = None,
                 vlan: bool = False) -> str:
    """The kernel filter: TCP, narrowed by ports, hosts and the user's expression.

    ``vlan`` repeats the expression inside one 802.1Q tag (libpcap's ``vlan`` shifts the offsets
    of what follows it), so tagged trunk traffic is not silently filtered out.
    """
    parts = ["tcp"]
    ports = sorted(set(ports))
    if ports:
        parts.append("(" + " or ".join(f"port {p}" for p in ports) + ")")
    hosts = list(dict.fromkeys(hosts))
    if hosts:
        parts.append("(" + " or ".join(("net " if "/" in h else "host ") + h for h in hosts)
                     + ")")
    if bpf and bpf.strip():
        parts.append(f"({bpf.strip()})")
    expr = " and ".join(parts)
    if vlan and not (bpf and re.search(r"\b(vlan|mpls|pppoes|geneve)\b", bpf)):
        expr = f"({expr}) or (vlan and {expr})"
    return expr


def find_helper(name: str) -> str | None:
    """Full path of a capture helper; sbin is searched too (not on a normal user's PATH)."""
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin", "/usr/local/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None
