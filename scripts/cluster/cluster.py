"""A real single-node Kubernetes on this machine, built and started by the project itself.

    cluster.py up      [--state DIR]   build what is missing (cached), start everything, write DIR/kubeconfig
    cluster.py down    [--state DIR]   stop everything; no process, mount, netns, veth, bridge or iptables rule stays
    cluster.py status  [--state DIR]   one line per component; exit 0 when the cluster answers
    cluster.py build                   only build (binaries and images), nothing started

What it is (learnt from kubernetes' hack/local-up-cluster.sh and kind's node image, written for this project):
- control plane as host processes: etcd (Debian's etcd-server), kube-apiserver, kube-controller-manager,
  kube-scheduler, all built from the k8s.io/kubernetes module (scripts/cluster/build-k8s.sh);
- the node: kubelet and kube-proxy (iptables mode, same build), containerd and runc and the CNI bridge,
  host-local and portmap plugins from Debian, one bridge ``pypiops0`` (10.244.0.1/24) for the pods;
- cluster DNS: CoreDNS (scripts/cluster/build-coredns.sh) as a host process on 10.244.0.1:53, the pods'
  nameserver, answering cluster.local only;
- storage: the default StorageClass ``pypiops-local`` with a small provisioner in this file that creates one
  host directory per claim (mode 0777, as kind's local-path provisioner does), deletes it with its volume;
- images: built here with no registry (scripts/cluster/images.py) and imported into containerd.

The apiserver answers on https://127.0.0.1:PORT for everything on the host. Pods reach it on the bridge
address; the port is closed to every other interface. Nothing in the cluster reaches off this machine: there
is no outbound NAT, pod traffic may not leave the bridge, and DNS has no upstream.

Every wait has a deadline; a component that does not come up fails with one sentence naming it and the tail
of its log, and what was started is stopped again.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import glob
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
K8S_VERSION = "v1.32.13"
CACHE = os.environ.get("PYPIOPS_CLUSTER_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pypi-ops", "cluster"
)
BIN = os.path.join(CACHE, "bin")
RUN = "/run/pypiops-cluster"  # sockets: short paths (108-byte limit), gone on reboot
SOCK = RUN + "/containerd.sock"
# kubelet's root dir: pod volumes and kubelet's own unix sockets (pod-resources, plugins) live there, so it needs
# a short path whatever the checkout's path is (108-byte socket limit). One cluster per machine, like the bridge.
VARLIB = "/var/lib/pypiops-cluster"
KUBELET_ROOT = VARLIB + "/kubelet"
BRIDGE = "pypiops0"
GATEWAY = "10.244.0.1"
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/24"
NODE = "pypiops-node"
STORAGE_CLASS = "pypiops-local"
CHAIN_PREFIXES = ("KUBE-", "CNI-", "PYPIOPS-")
MARKER = ".pypiops-cluster"  # written by up() into the state dir; down() empties no directory without it
sys.path.insert(0, HERE)
from images import IMAGES  # noqa: E402 - the one table of the images images.py builds

COMPONENTS = [
    "etcd",
    "kube-apiserver",
    "containerd",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "coredns",
    "provisioner",
]
APT = [
    "containerd",
    "runc",
    "containernetworking-plugins",
    "etcd-server",
    "iptables",
    "debootstrap",
    "conntrack",
    "openssl",
    "gcc",
    "libc6-dev",
]


class ClusterError(Exception):
    pass


def log(msg: str) -> None:
    print(f"cluster: {msg}", file=sys.stderr, flush=True)


def run(
    argv: list[str],
    what: str,
    timeout: float = 60,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(f"{what} did not finish within {timeout:.0f} s") from exc
    except FileNotFoundError as exc:
        raise ClusterError(f"{what}: {argv[0]} is not installed") from exc
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
        raise ClusterError(f"{what} failed (exit {proc.returncode}): {tail}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: str, n: int = 8) -> str:
    try:
        with open(path, errors="replace") as fh:
            lines = fh.read().splitlines()[-n:]
    except OSError:
        return "(no log)"
    return " | ".join(line.strip()[:300] for line in lines) or "(empty log)"


# ------------------------------------------------------------------------------------------------ state


class State:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.pki = os.path.join(self.root, "pki")
        self.logs = os.path.join(self.root, "logs")
        self.pids = os.path.join(self.root, "pids")
        self.kubeconfig = os.path.join(self.root, "kubeconfig")
        self.ports_file = os.path.join(self.root, "ports.json")
        self.pv_dir = os.path.join(self.root, "pv")

    def ports(self) -> dict[str, int]:
        try:
            with open(self.ports_file) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return {}

    def pid(self, name: str) -> int | None:
        """The component's PID while that very process runs (PID and start time recorded together)."""
        try:
            with open(os.path.join(self.pids, name + ".pid")) as fh:
                pid_s, _, token = fh.read().strip().partition(" ")
            pid = int(pid_s)
        except (OSError, ValueError):
            return None
        return pid if alive(pid) and start_time(pid) == token else None


def start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start(st: State, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    os.makedirs(st.logs, exist_ok=True)
    os.makedirs(st.pids, exist_ok=True)
    logf = open(os.path.join(st.logs, name + ".log"), "ab")  # noqa: SIM115 - handed to the child
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=logf,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=full_env,
        cwd=st.root,
    )
    logf.close()
    with open(os.path.join(st.pids, name + ".pid"), "w") as fh:
        fh.write(f"{proc.pid} {start_time(proc.pid)}")
    return proc.pid


def wait_for(what: str, check, timeout: float, st: State, name: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    delay = 0.2
    last = ""
    while True:
        if name and st.pid(name) is None:
            raise ClusterError(
                f"{what}: {name} exited; last lines of {st.logs}/{name}.log: "
                f"{tail(os.path.join(st.logs, name + '.log'))}"
            )
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - any failure of a probe means "not yet"
            last = str(exc)[:200]
        if time.monotonic() >= deadline:
            log_hint = (
                f"; last lines of {st.logs}/{name}.log: {tail(os.path.join(st.logs, name + '.log'))}" if name else ""
            )
            raise ClusterError(
                f"{what} did not happen within {timeout:.0f} s{' (last probe: ' + last + ')' if last else ''}{log_hint}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


# ------------------------------------------------------------------------------------------------ PKI


def openssl(args: list[str], what: str) -> None:
    run(["openssl", *args], what, 60)


def make_pki(st: State) -> None:
    os.makedirs(st.pki, mode=0o700, exist_ok=True)
    p = st.pki
    if os.path.exists(os.path.join(p, "done")):
        return
    openssl(
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{p}/ca.key",
            "-out",
            f"{p}/ca.crt",
            "-days",
            "30",
            "-subj",
            "/CN=pypiops-local-ca",
        ],
        "CA certificate",
    )
    openssl(["genrsa", "-out", f"{p}/sa.key", "2048"], "service-account key")
    openssl(["rsa", "-in", f"{p}/sa.key", "-pubout", "-out", f"{p}/sa.pub"], "service-account public key")
    san_api = ",".join(
        [
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
            "DNS:localhost",
            "IP:127.0.0.1",
            f"IP:{GATEWAY}",
            "IP:10.96.0.1",
        ]
    )
    certs = {
        "apiserver": ("/CN=kube-apiserver", san_api, "serverAuth"),
        "kubelet-serving": (f"/CN={NODE}", f"IP:{GATEWAY},IP:127.0.0.1,DNS:{NODE}", "serverAuth"),
        "admin": ("/O=system:masters/CN=pypiops-admin", "", "clientAuth"),
        "apiserver-kubelet-client": ("/O=system:masters/CN=kube-apiserver-kubelet-client", "", "clientAuth"),
        "controller-manager": ("/CN=system:kube-controller-manager", "", "clientAuth"),
        "scheduler": ("/CN=system:kube-scheduler", "", "clientAuth"),
        "kubelet": (f"/O=system:nodes/CN=system:node:{NODE}", "", "clientAuth"),
        "kube-proxy": ("/CN=system:kube-proxy", "", "clientAuth"),
        # CoreDNS and the provisioner are part of this local cluster's control plane, not workloads.
        "coredns": ("/O=system:masters/CN=pypiops-coredns", "", "clientAuth"),
        "provisioner": ("/O=system:masters/CN=pypiops-provisioner", "", "clientAuth"),
    }
    for name, (subj, san, usage) in certs.items():
        ext = os.path.join(p, name + ".ext")
        with open(ext, "w") as fh:
            fh.write(f"keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage={usage}\n")
            if san:
                fh.write(f"subjectAltName={san}\n")
        openssl(
            [
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                f"{p}/{name}.key",
                "-out",
                f"{p}/{name}.csr",
                "-subj",
                subj,
            ],
            f"{name} key",
        )
        openssl(
            [
                "x509",
                "-req",
                "-in",
                f"{p}/{name}.csr",
                "-CA",
                f"{p}/ca.crt",
                "-CAkey",
                f"{p}/ca.key",
                "-CAcreateserial",
                "-out",
                f"{p}/{name}.crt",
                "-days",
                "30",
                "-extfile",
                ext,
            ],
            f"{name} certificate",
        )
    for key in glob.glob(os.path.join(p, "*.key")):
        os.chmod(key, 0o600)
    open(os.path.join(p, "done"), "w").close()


def write_kubeconfig(st: State, path: str, user: str, server: str) -> None:
    def b64(name: str) -> str:
        with open(os.path.join(st.pki, name), "rb") as fh:
            return base64.b64encode(fh.read()).decode()

    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "pypiops-local",
        "clusters": [
            {"name": "pypiops-local", "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")}}
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(user + ".crt"), "client-key-data": b64(user + ".key")},
            }
        ],
        "contexts": [{"name": "pypiops-local", "context": {"cluster": "pypiops-local", "user": user}}],
    }
    tmp = path + ".tmp"
    with open(tmp, "w", opener=lambda f, fl: os.open(f, fl, 0o600)) as fh:
        json.dump(cfg, fh, indent=1)  # JSON is YAML: every client reads it
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------ API client


class Api:
    """A tiny client for the readiness checks and the provisioner (stdlib only: runs on the host's python3)."""

    def __init__(self, st: State, user: str = "admin") -> None:
        self.base = f"https://127.0.0.1:{st.ports()['apiserver']}"
        self.ctx = ssl.create_default_context(cafile=os.path.join(st.pki, "ca.crt"))
        self.ctx.load_cert_chain(os.path.join(st.pki, user + ".crt"), os.path.join(st.pki, user + ".key"))

    def call(self, method: str, path: str, body: object | None = None, timeout: float = 10) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            status = exc.code
        try:
            return status, json.loads(raw) if raw else {}
        except ValueError:
            return status, raw.decode(errors="replace")

    def ok(self, path: str) -> bool:
        return self.call("GET", path)[0] == 200

    def apply(self, path: str, name: str, obj: dict[str, object]) -> None:
        """Create, or leave alone when it exists (what cluster-up needs: idempotent, no drift to merge)."""
        status, body = self.call("POST", path, obj)
        if status not in (200, 201, 409):
            raise ClusterError(f"creating {obj.get('kind')} {name} failed: HTTP {status} {str(body)[:300]}")


# ------------------------------------------------------------------------------------------------ building


def build(kubectl: str) -> None:
    """Binaries and images, each step cached under CACHE (a second run builds nothing)."""
    missing = [
        tool
        for tool in ("containerd", "runc", "etcd", "iptables", "debootstrap", "openssl", "gcc", "ctr")
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool)
    ]
    if missing or not os.path.isdir("/usr/lib/cni"):
        raise ClusterError(
            f"missing on this machine: {', '.join(missing) or 'CNI plugins in /usr/lib/cni'}; "
            f"run: apt-get install {' '.join(APT)}"
        )
    if shutil.which("go") is None:
        raise ClusterError(
            "no Go toolchain on PATH: the cluster's binaries are built with go build; install Go >= 1.23 and run again"
        )
    t0 = time.monotonic()
    for script, what in (("build-k8s.sh", "Kubernetes binaries"), ("build-coredns.sh", "CoreDNS")):
        log(f"{what}: building if not cached ({BIN})")
        proc = subprocess.run(
            ["bash", os.path.join(HERE, script), BIN],
            env={**os.environ, "K8S_VERSION": K8S_VERSION},
            stdin=subprocess.DEVNULL,
            timeout=3600,
            check=False,
        )
        if proc.returncode != 0:
            raise ClusterError(f"building the {what} failed (exit {proc.returncode}); read the lines above")
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "images.py"), "build", CACHE, "--kubectl", kubectl],
        stdin=subprocess.DEVNULL,
        timeout=3600,
        check=False,
    )
    if proc.returncode != 0:
        raise ClusterError(f"building the images failed (exit {proc.returncode}); read the lines above")
    log(f"build step done in {time.monotonic() - t0:.0f} s")


# ------------------------------------------------------------------------------------------------ up


KUBE_SYSCTLS = (
    "net.ipv4.conf.all.route_localnet",
    "kernel.panic",
    "kernel.panic_on_oops",
    "vm.overcommit_memory",
    "net.netfilter.nf_conntrack_max",
)


def sysctl_record(st: State, key: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    saved = os.path.join(st.root, "sysctl.json")
    if not os.path.exists(path):
        return
    old: dict[str, str] = {}
    if os.path.exists(saved):
        with open(saved) as fh:
            old = json.load(fh)
    if key not in old:
        with contextlib.suppress(OSError), open(path) as fh:
            old[key] = fh.read().strip()
        with open(saved, "w") as fh:
            json.dump(old, fh)


def sysctl_set(st: State, key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    sysctl_record(st, key)
    try:
        with open(path) as fh:
            cur = fh.read().strip()
        if cur != value:
            with open(path, "w") as fh:
                fh.write(value)
    except OSError as exc:
        raise ClusterError(f"cannot set {key}={value} ({exc}); the cluster needs it for pod networking") from exc


def network_up(st: State, api_port: int, kubelet_port: int) -> None:
    if not os.path.exists(f"/sys/class/net/{BRIDGE}"):
        run(["ip", "link", "add", BRIDGE, "type", "bridge"], "creating the pod bridge")
    addrs = run(["ip", "-4", "-o", "addr", "show", "dev", BRIDGE], "reading the bridge address").stdout
    if GATEWAY not in addrs:
        run(["ip", "addr", "add", GATEWAY + "/24", "dev", BRIDGE], "addressing the pod bridge")
    run(["ip", "link", "set", BRIDGE, "up"], "raising the pod bridge")
    sysctl_set(st, "net.ipv4.ip_forward", "1")
    for key in KUBE_SYSCTLS:  # kubelet and kube-proxy set these; remember them so that down() restores them
        sysctl_record(st, key)
    if os.path.exists("/proc/sys/net/bridge/bridge-nf-call-iptables"):
        sysctl_set(st, "net.bridge.bridge-nf-call-iptables", "1")
    # Guard rules, in chains of our own: pods may not send anything off the bridge (FORWARD), and the apiserver,
    # kubelet and DNS ports answer only on loopback and the bridge (INPUT).
    ipt = ["iptables", "-w", "5"]
    forward = [["-s", POD_CIDR, "!", "-o", BRIDGE, "-j", "DROP"]]
    inbound = []
    for port in (api_port, kubelet_port, 53):
        # the apiserver listens on every address; the kubelet and DNS on the bridge address only
        dest = [] if port == api_port else ["-d", GATEWAY]
        for proto in ("tcp", "udp") if port == 53 else ("tcp",):
            for iface in ("lo", BRIDGE):
                inbound.append([*dest, "-p", proto, "--dport", str(port), "-i", iface, "-j", "RETURN"])
            inbound.append([*dest, "-p", proto, "--dport", str(port), "-j", "DROP"])
    for chain, builtin, rules in (("PYPIOPS-FORWARD", "FORWARD", forward), ("PYPIOPS-INPUT", "INPUT", inbound)):
        run(ipt + ["-N", chain], f"creating {chain}", check=False)
        run(ipt + ["-F", chain], f"flushing {chain}")
        for rule in rules:
            run(ipt + ["-A", chain, *rule], f"adding a rule to {chain}")
        if run(ipt + ["-C", builtin, "-j", chain], f"checking the jump to {chain}", check=False).returncode != 0:
            run(ipt + ["-I", builtin, "1", "-j", chain], f"jumping to {chain}")


CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_NAME = "pypiops"  # kubelet's cgroupRoot: every pod cgroup lives below it, so down removes them all


def cgroup_dirs(v2_too: bool = False) -> list[str]:
    """The cgroup v1 hierarchies mounted here (kubelet still runs on v1 in 1.32); with ``v2_too`` also the unified
    one, where kubelet makes its tree as well (down removes it there too)."""
    if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        return [CGROUP_ROOT]  # cgroup v2 only: one hierarchy, the root
    out = []
    for name in sorted(os.listdir(CGROUP_ROOT)):
        path = os.path.join(CGROUP_ROOT, name)
        if os.path.isdir(path) and not os.path.islink(path) and (v2_too or name != "unified"):
            out.append(path)
    return out


def cgroups_up() -> None:
    for hier in cgroup_dirs():
        path = os.path.join(hier, CGROUP_NAME)
        os.makedirs(path, exist_ok=True)
        if os.path.basename(hier) == "cpuset":
            for knob in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(hier, knob)) as src, open(os.path.join(path, knob), "w") as dst:
                    dst.write(src.read().strip() or "0")


def cgroup_pids() -> list[int]:
    """Every process still in our cgroup tree: a pod's processes outlive a shim killed with SIGKILL."""
    pids: set[int] = set()
    for hier in cgroup_dirs(v2_too=True):
        for dirpath, _dirs, files in os.walk(os.path.join(hier, CGROUP_NAME)):
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError, ValueError), open(os.path.join(dirpath, "cgroup.procs")) as fh:
                    pids |= {int(x) for x in fh.read().split()}
    return sorted(pids - {os.getpid()})


def cgroups_down() -> None:
    for hier in cgroup_dirs(v2_too=True):
        top = os.path.join(hier, CGROUP_NAME)
        if not os.path.isdir(top):
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda e: -len(e[0])):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def write_configs(st: State, ports: dict[str, int]) -> None:
    cni = os.path.join(st.root, "cni", "net.d")
    os.makedirs(cni, exist_ok=True)
    conflist = {
        "cniVersion": "1.0.0",
        "name": "pypiops",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
                    # Services only, no default route: a pod reaches the pod network and Services, nothing else.
                    "routes": [{"dst": SERVICE_CIDR}],
                    "dataDir": os.path.join(st.root, "cni", "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    with open(os.path.join(cni, "10-pypiops.conflist"), "w") as fh:
        json.dump(conflist, fh, indent=1)
    with open(os.path.join(st.root, "containerd.toml"), "w") as fh:
        fh.write(f"""version = 2
root = "{st.root}/containerd/root"
state = "{RUN}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{SOCK}"
[ttrpc]
  address = "{RUN}/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{IMAGES["pause"]}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{RUN}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{st.root}/containerd/opt"
""")
    kubelet = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": GATEWAY,
        "port": ports["kubelet"],
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports["kubelet_healthz"],
        "tlsCertFile": f"{st.pki}/kubelet-serving.crt",
        "tlsPrivateKeyFile": f"{st.pki}/kubelet-serving.key",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": f"{st.pki}/ca.crt"},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": "/" + CGROUP_NAME,
        "enforceNodeAllocatable": [],
        "failSwapOn": False,
        "clusterDNS": [GATEWAY],
        "clusterDomain": "cluster.local",
        "resolvConf": "",
        "containerRuntimeEndpoint": "unix://" + SOCK,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "localStorageCapacityIsolation": False,
        "serializeImagePulls": False,
        "protectKernelDefaults": False,
        "makeIPTablesUtilChains": True,
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }
    with open(os.path.join(st.root, "kubelet.json"), "w") as fh:
        json.dump(kubelet, fh, indent=1)
    proxy = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": f"{st.root}/kube-proxy.kubeconfig"},
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": NODE,
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": f"127.0.0.1:{ports['proxy_healthz']}",
        "metricsBindAddress": f"127.0.0.1:{ports['proxy_metrics']}",
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpCloseWaitTimeout": "0s", "tcpEstablishedTimeout": "0s"},
        "iptables": {"masqueradeAll": False, "syncPeriod": "10s", "minSyncPeriod": "1s"},
    }
    with open(os.path.join(st.root, "kube-proxy.json"), "w") as fh:
        json.dump(proxy, fh, indent=1)
    with open(os.path.join(st.root, "Corefile"), "w") as fh:
        fh.write(f""".:53 {{
    bind {GATEWAY}
    errors
    health 127.0.0.1:{ports["dns_health"]}
    ready 127.0.0.1:{ports["dns_ready"]}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {st.root}/coredns.kubeconfig pypiops-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
""")


def residue(st: State) -> bool:
    """Anything an earlier cluster that was never taken down left behind: a component, the sockets, the bridge."""
    return (
        any(st.pid(c) for c in COMPONENTS)
        or os.path.exists(RUN)
        or os.path.exists(VARLIB)
        or os.path.exists(f"/sys/class/net/{BRIDGE}")
    )


def up(st: State, kubectl: str, timeout: float) -> None:
    if all(st.pid(c) for c in COMPONENTS):
        with contextlib.suppress(ClusterError):
            wait_for("kube-apiserver answering /readyz", lambda: Api(st).ok("/readyz"), 30, st, "kube-apiserver")
    if status(st, quiet=True):
        log(f"already up: KUBECONFIG={st.kubeconfig}")
        return
    foreign = procs_matching(
        lambda c: os.path.basename(c.split(" ", 1)[0]) in ("kubelet", "kube-proxy") and BIN not in c
    )
    if foreign:
        raise ClusterError(
            f"another Kubernetes node runs on this machine (pid {foreign[0]}); this cluster would "
            "share its iptables chains and bridge names: stop it first"
        )
    if residue(st):
        log("a partial cluster is left from an earlier run (killed before its down?): cleaning it first")
        down(st)
    build(kubectl)
    t0 = time.monotonic()
    os.makedirs(st.root, exist_ok=True)
    if set(os.listdir(st.root)) - {"logs"} and not os.path.exists(os.path.join(st.root, MARKER)):
        raise ClusterError(f"{st.root} is not empty and is no cluster state (no {MARKER}); choose an empty --state")
    open(os.path.join(st.root, MARKER), "w").close()
    for stale in ("logs",):
        shutil.rmtree(os.path.join(st.root, stale), ignore_errors=True)
    ports = {
        k: free_port()
        for k in (
            "apiserver",
            "etcd",
            "etcd_peer",
            "kubelet",
            "kubelet_healthz",
            "proxy_healthz",
            "proxy_metrics",
            "dns_health",
            "dns_ready",
        )
    }
    with open(st.ports_file, "w") as fh:
        json.dump(ports, fh)
    os.makedirs(RUN, exist_ok=True)
    try:
        _up(st, ports, timeout)
    except BaseException:
        log("start failed: stopping what was started (logs kept in " + st.logs + ")")
        with contextlib.suppress(Exception):
            down(st, keep_logs=True)
        raise
    log(f"up in {time.monotonic() - t0:.0f} s: export KUBECONFIG={st.kubeconfig}")


def _up(st: State, ports: dict[str, int], timeout: float) -> None:
    make_pki(st)
    server = f"https://127.0.0.1:{ports['apiserver']}"
    write_kubeconfig(st, st.kubeconfig, "admin", server)
    for user in ("controller-manager", "scheduler", "kubelet", "kube-proxy", "coredns"):
        write_kubeconfig(st, os.path.join(st.root, user + ".kubeconfig"), user, server)
    network_up(st, ports["apiserver"], ports["kubelet"])
    cgroups_up()
    write_configs(st, ports)
    p = st.pki

    start(
        st,
        "etcd",
        [
            "etcd",
            "--name",
            "pypiops",
            "--data-dir",
            os.path.join(st.root, "etcd"),
            "--listen-client-urls",
            f"http://127.0.0.1:{ports['etcd']}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{ports['etcd']}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{ports['etcd_peer']}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{ports['etcd_peer']}",
            "--initial-cluster",
            f"pypiops=http://127.0.0.1:{ports['etcd_peer']}",
            "--listen-metrics-urls",
            "",
            "--log-level",
            "warn",
        ],
        env={"ETCD_UNSUPPORTED_ARCH": ""},
    )
    wait_for(
        "etcd answering /health",
        lambda: (
            b'"health":"true"' in urllib.request.urlopen(f"http://127.0.0.1:{ports['etcd']}/health", timeout=2).read()
        ),
        timeout,
        st,
        "etcd",
    )

    start(st, "containerd", ["containerd", "--config", os.path.join(st.root, "containerd.toml")])
    start(
        st,
        "kube-apiserver",
        [
            f"{BIN}/kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            "--bind-address=0.0.0.0",
            f"--secure-port={ports['apiserver']}",
            f"--advertise-address={GATEWAY}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            f"--client-ca-file={p}/ca.crt",
            f"--tls-cert-file={p}/apiserver.crt",
            f"--tls-private-key-file={p}/apiserver.key",
            f"--kubelet-client-certificate={p}/apiserver-kubelet-client.crt",
            f"--kubelet-client-key={p}/apiserver-kubelet-client.key",
            f"--kubelet-certificate-authority={p}/ca.crt",
            "--kubelet-preferred-address-types=InternalIP",
            f"--service-account-key-file={p}/sa.pub",
            f"--service-account-signing-key-file={p}/sa.key",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--v=1",
        ],
    )
    wait_for("the containerd socket", lambda: os.path.exists(SOCK), timeout, st, "containerd")
    images_import(st)
    wait_for("kube-apiserver answering /readyz", lambda: Api(st).ok("/readyz"), timeout, st, "kube-apiserver")

    start(
        st,
        "kube-controller-manager",
        [
            f"{BIN}/kube-controller-manager",
            f"--kubeconfig={st.root}/controller-manager.kubeconfig",
            f"--authentication-kubeconfig={st.root}/controller-manager.kubeconfig",
            f"--authorization-kubeconfig={st.root}/controller-manager.kubeconfig",
            f"--service-account-private-key-file={p}/sa.key",
            f"--root-ca-file={p}/ca.crt",
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            f"--cluster-cidr={POD_CIDR}",
            "--allocate-node-cidrs=false",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*,-nodeipam,-cloud-node-lifecycle",
            "--v=1",
        ],
    )
    start(
        st,
        "kube-scheduler",
        [
            f"{BIN}/kube-scheduler",
            f"--kubeconfig={st.root}/scheduler.kubeconfig",
            f"--authentication-kubeconfig={st.root}/scheduler.kubeconfig",
            f"--authorization-kubeconfig={st.root}/scheduler.kubeconfig",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--v=1",
        ],
    )
    start(
        st,
        "kubelet",
        [
            f"{BIN}/kubelet",
            f"--config={st.root}/kubelet.json",
            f"--kubeconfig={st.root}/kubelet.kubeconfig",
            f"--root-dir={KUBELET_ROOT}",
            f"--cert-dir={KUBELET_ROOT}/pki",
            f"--hostname-override={NODE}",
            f"--node-ip={GATEWAY}",
            "--v=1",
        ],
    )
    start(st, "kube-proxy", [f"{BIN}/kube-proxy", f"--config={st.root}/kube-proxy.json", "--v=1"])
    start(st, "coredns", [f"{BIN}/coredns", "-conf", os.path.join(st.root, "Corefile")])
    start(st, "provisioner", [sys.executable, os.path.abspath(__file__), "provisioner", "--state", st.root])

    api = Api(st)

    def node_ready() -> bool:
        code, node = api.call("GET", f"/api/v1/nodes/{NODE}")
        if code != 200 or not isinstance(node, dict):
            return False
        conds = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        return conds.get("Ready") == "True"

    wait_for(f"node {NODE} Ready (kubelet, containerd, CNI)", node_ready, timeout, st, "kubelet")
    wait_for(
        "CoreDNS ready",
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{ports['dns_ready']}/ready", timeout=2).status == 200,
        timeout,
        st,
        "coredns",
    )
    wait_for(
        "kube-proxy healthy",
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{ports['proxy_healthz']}/healthz", timeout=2).status == 200,
        timeout,
        st,
        "kube-proxy",
    )
    api.apply(
        "/apis/storage.k8s.io/v1/storageclasses",
        STORAGE_CLASS,
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "pypiops.local/hostdir",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        },
    )

    def default_sa() -> bool:
        return api.ok("/api/v1/namespaces/default/serviceaccounts/default")

    wait_for("the default service account (controller-manager)", default_sa, timeout, st, "kube-controller-manager")
    write_values(st)


def write_values(st: State) -> None:
    """Chart values and playbook variables for this cluster: the locally built images, never pulled."""
    values = {
        "image": {
            "repository": IMAGES["pypiserver"].rsplit(":", 1)[0],
            "tag": IMAGES["pypiserver"].rsplit(":", 1)[1],
            "pullPolicy": "Never",
        },
        "tests": {"pythonImage": IMAGES["python"], "kubectlImage": IMAGES["kubectl"]},
    }
    with open(os.path.join(st.root, "values-local.yaml"), "w") as fh:
        json.dump(values, fh, indent=1)
    with open(os.path.join(st.root, "verify-vars.yml"), "w") as fh:
        json.dump(
            {
                "pypi_k8s_kubeconfig": st.kubeconfig,
                "pypi_k8s_values_files": [os.path.join(st.root, "values-local.yaml")],
                # playbooks/upgrade_drill.yml starts from the older pypiserver image built beside the current one
                "pypi_upgrade_from_values": {"image": {"tag": IMAGES["pypiserver-2.3.2"].rsplit(":", 1)[1]}},
            },
            fh,
            indent=1,
        )


def images_import(st: State) -> None:
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "images.py"), "import", CACHE, "--address", SOCK],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        raise ClusterError(f"importing the images into containerd failed: {proc.stderr.strip()[-600:]}")


# ------------------------------------------------------------------------------------------------ provisioner


def provisioner(st: State) -> None:
    """Bind each Pending claim of the default class to a new hostPath volume; delete Released ones with their dir."""
    api = Api(st, "provisioner")
    os.makedirs(st.pv_dir, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        with contextlib.suppress(Exception):
            _provision_once(api, st)
        stop.wait(1.0)


def _provision_once(api: Api, st: State) -> None:
    code, claims = api.call("GET", "/api/v1/persistentvolumeclaims")
    if code != 200 or not isinstance(claims, dict):
        return
    for pvc in claims.get("items", []):
        meta, spec = pvc["metadata"], pvc["spec"]
        if pvc.get("status", {}).get("phase") != "Pending" or spec.get("volumeName"):
            continue
        if spec.get("storageClassName") != STORAGE_CLASS or meta.get("deletionTimestamp"):
            continue
        name = "pvc-" + meta["uid"]
        path = os.path.join(st.pv_dir, name)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o777)  # any pod user may write, as with kind's local-path provisioner
        api.call(
            "POST",
            "/api/v1/persistentvolumes",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": "pypiops.local/hostdir"}},
                "spec": {
                    "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                    "accessModes": spec["accessModes"],
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": STORAGE_CLASS,
                    "hostPath": {"path": path, "type": "Directory"},
                    "claimRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
                },
            },
        )
    code, vols = api.call("GET", "/api/v1/persistentvolumes")
    if code != 200 or not isinstance(vols, dict):
        return
    for pv in vols.get("items", []):
        spec = pv["spec"]
        if (
            pv.get("status", {}).get("phase") == "Released"
            and spec.get("storageClassName") == STORAGE_CLASS
            and spec.get("persistentVolumeReclaimPolicy") == "Delete"
        ):
            path = spec.get("hostPath", {}).get("path", "")
            real = os.path.realpath(path)
            if os.path.dirname(real) == os.path.realpath(st.pv_dir) and os.path.basename(real).startswith("pvc-"):
                shutil.rmtree(path, ignore_errors=True)
            api.call("DELETE", f"/api/v1/persistentvolumes/{pv['metadata']['name']}")


# ------------------------------------------------------------------------------------------------ down


def procs_matching(pred) -> list[int]:  # noqa: ANN001
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pred(cmd):
            out.append(int(d))
    return out


def descendants(pids: list[int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out: list[int] = []
    todo = list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def kill_all(pids: list[int], grace: float) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)


def our_mounts(st: State) -> list[str]:
    roots = (st.root + "/", RUN + "/", VARLIB + "/", "/run/netns/cni-", "/var/run/netns/cni-")
    found = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            mnt = line.split()[4].replace("\\040", " ")
            if mnt.startswith(roots) or mnt == RUN:
                found.append(mnt)
    return sorted(set(found), key=len, reverse=True)


def iptables_cleanup() -> None:
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            continue
        for table in ("filter", "nat", "mangle", "raw"):
            proc = run([tool, "-w", "5", "-t", table, "-S"], f"{tool} -S", check=False)
            if proc.returncode != 0:
                continue
            ours = [
                line.split()[1]
                for line in proc.stdout.splitlines()
                if line.startswith("-N ") and line.split()[1].startswith(CHAIN_PREFIXES)
            ]
            for line in proc.stdout.splitlines():
                parts = shlex.split(line)
                if (
                    len(parts) > 2
                    and parts[0] == "-A"
                    and not parts[1].startswith(CHAIN_PREFIXES)
                    and any(p in ours for p in parts)
                ):
                    run([tool, "-w", "5", "-t", table, "-D", *parts[1:]], "deleting a jump rule", check=False)
            for chain in ours:
                run([tool, "-w", "5", "-t", table, "-F", chain], "flushing a chain", check=False)
            for chain in ours:
                run([tool, "-w", "5", "-t", table, "-X", chain], "deleting a chain", check=False)


def down(st: State, keep_logs: bool = True) -> None:
    t0 = time.monotonic()
    # 1. The pods' processes (shims and their children) and our components, newest first.
    shims = procs_matching(lambda c: "containerd-shim" in c and SOCK in c)
    kill_all(descendants(shims), 5)
    for name in reversed(COMPONENTS):
        pid = st.pid(name)
        if pid:
            kill_all(descendants([pid]), 10)
    leftovers = procs_matching(lambda c: (st.root in c or SOCK in c or VARLIB in c) and "cluster.py" not in c)
    kill_all(descendants(leftovers), 5)
    kill_all(cgroup_pids(), 5)
    # 2. Mounts: pod volumes, container rootfs, netns bind mounts; then the netns files themselves.
    for _ in range(3):
        mounts = our_mounts(st)
        if not mounts:
            break
        for mnt in mounts:
            run(["umount", "-l", mnt], f"umount {mnt}", check=False)
    for nsfile in glob.glob("/run/netns/cni-*") + glob.glob("/var/run/netns/cni-*"):
        with contextlib.suppress(OSError):
            os.unlink(nsfile)
    # 3. Network: the bridge (its veths went with the netns), our iptables chains, the sysctls we changed.
    # The veths first: once the bridge is gone they no longer name it as their master and would be left behind.
    veths = [
        link
        for link in os.listdir("/sys/class/net")
        if link.startswith("veth")
        and os.path.exists(f"/sys/class/net/{link}/brport")
        and os.path.realpath(f"/sys/class/net/{link}/brport/bridge").endswith("/" + BRIDGE)
    ]
    for link in [*veths, BRIDGE]:
        if os.path.exists(f"/sys/class/net/{link}"):
            run(["ip", "link", "del", link], f"deleting {link}", check=False)
    iptables_cleanup()
    cgroups_down()
    saved = os.path.join(st.root, "sysctl.json")
    if os.path.exists(saved):
        with open(saved) as fh:
            for key, value in json.load(fh).items():
                with contextlib.suppress(OSError), open("/proc/sys/" + key.replace(".", "/"), "w") as out:
                    out.write(value)
        os.unlink(saved)
    # 4. State: everything but the logs (kept for a post-mortem), and only in a directory up() marked.
    if os.path.isdir(st.root) and os.path.exists(os.path.join(st.root, MARKER)):
        for entry in os.listdir(st.root):
            if (keep_logs and entry == "logs") or entry == MARKER:
                continue
            path = os.path.join(st.root, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)
    shutil.rmtree(RUN, ignore_errors=True)
    if not our_mounts(st):
        shutil.rmtree(VARLIB, ignore_errors=True)
    left = our_mounts(st)
    if left:
        raise ClusterError(f"down: {len(left)} mount(s) could not be removed, first {left[0]}; umount them by hand")
    log(f"down in {time.monotonic() - t0:.0f} s")


# ------------------------------------------------------------------------------------------------ status


def status(st: State, quiet: bool = False) -> bool:
    ok = True
    for name in COMPONENTS:
        pid = st.pid(name)
        if not quiet:
            print(f"{name:26} {'running pid ' + str(pid) if pid else 'not running'}")
        ok = ok and pid is not None
    if ok:
        try:
            ok = Api(st).ok("/readyz")
        except Exception:  # noqa: BLE001
            ok = False
    if not quiet:
        print(f"{'apiserver /readyz':26} {'ok' if ok else 'not answering'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["up", "down", "status", "build", "provisioner"])
    ap.add_argument("--state", default=os.environ.get("PYPIOPS_CLUSTER_STATE") or os.path.join(REPO, ".cluster"))
    ap.add_argument("--kubectl", default=os.path.join(REPO, ".venv", "bin", "kubectl"))
    ap.add_argument("--timeout", type=float, default=180, help="deadline for each component to come up (s)")
    args = ap.parse_args()
    st = State(args.state)
    if args.command != "provisioner" and os.geteuid() != 0:
        print("cluster: must run as root (containerd, bridges, iptables, mounts)", file=sys.stderr)
        return 2
    try:
        if args.command == "up":
            up(st, args.kubectl, args.timeout)
        elif args.command == "down":
            down(st)
        elif args.command == "build":
            build(args.kubectl)
        elif args.command == "provisioner":
            provisioner(st)
        else:
            return 0 if status(st) else 1
    except ClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as exc:
        print(
            f"cluster: {exc.cmd[0] if exc.cmd else 'a step'} did not finish within {exc.timeout:.0f} s; read "
            f"{st.logs} and run again",
            file=sys.stderr,
        )
        return 1
    except (OSError, subprocess.SubprocessError, ValueError, urllib.error.URLError) as exc:
        print(
            f"cluster: {type(exc).__name__}: {exc}; read {st.logs}, then 'make cluster-down' and try again",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("cluster: interrupted; run 'make cluster-down' to stop what was started", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
