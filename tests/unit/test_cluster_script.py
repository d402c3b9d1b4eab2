"""scripts/cluster/: the pieces of cluster.py and images.py that need no cluster, run for real (real processes,
real files). The cluster itself is tested in tests/cluster/."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import tarfile

import pytest

from tests.helpers import ROOT

HERE = ROOT / "scripts" / "cluster"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"pypiops_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


cluster = _load("cluster")
images = _load("images")


def test_a_component_that_exits_is_named_with_its_log_tail(tmp_path):
    st = cluster.State(str(tmp_path))
    cluster.start(st, "fakecomp", ["sh", "-c", "echo 'listen tcp: address already in use'; exit 3"])
    with pytest.raises(cluster.ClusterError) as exc:
        cluster.wait_for("fakecomp answering", lambda: False, 30, st, "fakecomp")
    msg = str(exc.value)
    assert "fakecomp exited" in msg and "address already in use" in msg and "fakecomp.log" in msg


def test_a_component_that_never_answers_fails_at_its_deadline(tmp_path):
    st = cluster.State(str(tmp_path))
    pid = cluster.start(st, "slowcomp", ["sh", "-c", "echo starting; exec sleep 60"])
    try:
        with pytest.raises(cluster.ClusterError) as exc:
            cluster.wait_for("slowcomp ready", lambda: 1 / 0, 1, st, "slowcomp")
        msg = str(exc.value)
        assert msg.startswith("slowcomp ready did not happen within 1 s")
        assert "division by zero" in msg and "starting" in msg
    finally:
        os.kill(pid, signal.SIGKILL)


def test_kill_all_stops_a_process_that_ignores_sigterm(tmp_path):
    st = cluster.State(str(tmp_path))
    pid = cluster.start(st, "stubborn", ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"])
    assert cluster.alive(pid)
    cluster.kill_all(cluster.descendants([pid]), grace=0.5)
    assert not cluster.alive(pid)


def test_oci_archive_is_a_valid_layout_named_for_containerd(tmp_path):
    layer = images.layer_from_files({"pause": (b"\x7fELF...", 0o755)}, dirs={"data": 9898})
    out = tmp_path / "img.tar"
    images.write_oci_archive(str(out), "localhost/pypiops/test:1.0", [layer], {"Entrypoint": ["/pause"]})
    with tarfile.open(out) as tf:
        names = tf.getnames()
        index = json.load(tf.extractfile("index.json"))
        blobs = {n.split("/")[-1]: tf.extractfile(n).read() for n in names if n.startswith("blobs/")}
    assert "oci-layout" in names
    desc = index["manifests"][0]
    assert desc["annotations"]["io.containerd.image.name"] == "localhost/pypiops/test:1.0"
    for digest, data in blobs.items():
        assert hashlib.sha256(data).hexdigest() == digest
    manifest = json.loads(blobs[desc["digest"].split(":")[1]])
    config = json.loads(blobs[manifest["config"]["digest"].split(":")[1]])
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    with tarfile.open(fileobj=__import__("io").BytesIO(layer)) as lt:
        members = {m.name: m for m in lt.getmembers()}
    assert members["data"].uid == 9898 and members["pause"].mode == 0o755 and members["pause"].mtime == 0


def test_same_inputs_give_the_same_layer_digest(tmp_path):
    (tmp_path / "root" / "opt").mkdir(parents=True)
    (tmp_path / "root" / "opt" / "f").write_text("x")
    first = images.layer_from_dir(str(tmp_path / "root"))
    os.utime(tmp_path / "root" / "opt" / "f", (1, 1))
    assert images.layer_from_dir(str(tmp_path / "root")) == first


def test_status_of_a_cluster_that_never_started_is_not_up(tmp_path, capsys):
    assert cluster.status(cluster.State(str(tmp_path))) is False
    out = capsys.readouterr().out
    assert "kube-apiserver" in out and "not running" in out
