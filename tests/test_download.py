"""actlab.download against a loopback HTTP server serving small files in the real formats.

Nothing here touches the network: the server listens on 127.0.0.1 (port 0) and every URL points at it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from actlab import download
from actlab.data import DataError

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


# -----------------------------------------------------------------------------
# a loopback server: serves a dict of path -> bytes, honours Range unless told not to


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        body = srv.files.get(self.path)
        if body is None:
            return self.send_error(404)
        start = 0
        if rng and srv.ranges:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            if start >= len(body):
                return self.send_error(416)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        chunk = body[start:] if srv.cut is None else body[start : start + srv.cut]
        srv.cut = None  # one-shot: the next request is served whole
        # counted before the write: the client can have read every byte (and the test asserted on
        # `sent`) before this thread runs another line after write()
        srv.sent += len(chunk)
        self.wfile.write(chunk)
        self.close_connection = True

    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")  # loopback must never go through a proxy
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.files, srv.requests, srv.ranges, srv.cut, srv.sent = {}, [], True, None, 0
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


# -----------------------------------------------------------------------------
# files in the real formats


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def idx_bytes(a: np.ndarray, magic: int) -> bytes:
    header = struct.pack(">I", magic) + struct.pack(f">{a.ndim}I", *a.shape)
    return gzip.compress(header + a.astype(np.uint8).tobytes())


def make_mnist(n_train=40, n_test=20, seed=0):
    """Four gzip IDX files of random 28x28 images; labels cycle 0..9 so every class is present."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    files = {
        IDX_NAMES[k]: idx_bytes(a, download.IDX_IMAGES if k.endswith("images") else download.IDX_LABELS)
        for k, a in arrays.items()
    }
    return arrays, files


def serve(server, prefix, files):
    for name, body in files.items():
        server.files[f"/{prefix}/{name}"] = body


def idx_cfg(server, root, files, pin=True, **extra):
    entries = {k: {"name": n, "sha256": sha256(files[n]) if pin else None} for k, n in IDX_NAMES.items()}
    return OmegaConf.create(
        {
            "name": "mnist",
            "loader": "idx",
            "root": str(root),
            "base_url": f"{server.url}/mnist/",
            "files": entries,
            **extra,
        }
    )


def cifar_batch(n, rng):
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    pixels = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    rec = np.concatenate([labels[:, None], pixels.reshape(n, -1)], 1)
    return rec.tobytes(), pixels, labels.astype(np.int64)


def tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_cifar(per_batch=4, seed=0, corrupt=None):
    """A cifar-10-binary.tar.gz with the real member names; `corrupt(name, bytes)` may alter a batch."""
    rng = np.random.default_rng(seed)
    members, xs, ys = {}, {"train": [], "test": []}, {"train": [], "test": []}
    for split, names in (("train", download.CIFAR_TRAIN), ("test", download.CIFAR_TEST)):
        for name in names:
            data, x, y = cifar_batch(per_batch, rng)
            members[name] = corrupt(name, data) if corrupt else data
            xs[split].append(x)
            ys[split].append(y)
    members["cifar-10-batches-bin/batches.meta.txt"] = b"airplane\nautomobile\n"
    expected = {s: (np.concatenate(xs[s]), np.concatenate(ys[s])) for s in xs}
    return tar_gz(members), expected


def cifar_cfg(server, root, archive, pin=True, **extra):
    server.files["/kriz/cifar-10-binary.tar.gz"] = archive
    return OmegaConf.create(
        {
            "name": "cifar10",
            "loader": "cifar10",
            "root": str(root),
            "url": f"{server.url}/kriz/cifar-10-binary.tar.gz",
            "archive": "cifar-10-binary.tar.gz",
            "sha256": sha256(archive) if pin else None,
            "md5": hashlib.md5(archive).hexdigest(),
            **extra,
        }
    )


# -----------------------------------------------------------------------------
# download + parse


def test_idx_download_parses_exact_arrays_and_downloads_once(server, tmp_path):
    arrays, files = make_mnist()
    serve(server, "mnist", files)
    cfg = idx_cfg(server, tmp_path / "mnist", files)
    (xtr, ytr), (xte, yte) = download.load_idx_dataset(cfg)
    np.testing.assert_array_equal(xtr, arrays["train_images"])
    np.testing.assert_array_equal(ytr, arrays["train_labels"])
    np.testing.assert_array_equal(xte, arrays["test_images"])
    np.testing.assert_array_equal(yte, arrays["test_labels"])
    assert xtr.dtype == np.uint8 and xtr.shape == (40, 28, 28) and ytr.dtype == np.int64
    assert len(server.requests) == 4
    assert not list((tmp_path / "mnist").glob("*.part"))  # moved into place atomically
    download.load_idx_dataset(cfg)  # a second load verifies the local copies, fetches nothing
    assert len(server.requests) == 4


def test_cifar_download_parses_exact_arrays(server, tmp_path):
    archive, expected = make_cifar()
    cfg = cifar_cfg(server, tmp_path / "cifar10", archive)
    (xtr, ytr), (xte, yte) = download.load_cifar10(cfg)
    assert xtr.shape == (20, 3, 32, 32) and xtr.dtype == np.uint8 and ytr.dtype == np.int64
    np.testing.assert_array_equal(xtr, expected["train"][0])
    np.testing.assert_array_equal(ytr, expected["train"][1])
    np.testing.assert_array_equal(xte, expected["test"][0])
    np.testing.assert_array_equal(yte, expected["test"][1])
    assert not (tmp_path / "cifar10" / "cifar-10-batches-bin").exists()  # read in memory, never extracted


def test_data_load_end_to_end_mnist_format(server, tmp_path):
    from actlab import data

    arrays, files = make_mnist(n_train=40, n_test=20)
    serve(server, "mnist", files)
    cfg = idx_cfg(server, tmp_path / "mnist", files, split_seed=0, val_size=10, batch_size=8)
    s = data.load(cfg)
    assert s.x_train.shape == (30, 1, 28, 28) and s.x_val.shape == (10, 1, 28, 28)
    assert s.x_test.shape == (20, 1, 28, 28) and s.y_test.tolist() == arrays["test_labels"].tolist()
    assert s.task == "classification" and s.num_outputs == 10 and s.y_train.dtype.is_floating_point is False


def test_data_load_end_to_end_cifar(server, tmp_path):
    from actlab import data

    archive, _ = make_cifar(per_batch=10)
    s = data.load(cifar_cfg(server, tmp_path / "c", archive, split_seed=0, val_size=10, batch_size=8))
    assert s.x_train.shape == (40, 3, 32, 32) and s.x_val.shape == (10, 3, 32, 32)
    assert s.x_test.shape == (10, 3, 32, 32)


# -----------------------------------------------------------------------------
# resuming


def test_resume_keeps_prefix_and_transfers_only_the_rest(server, tmp_path):
    body = bytes(range(256)) * 64
    server.files["/f.bin"] = body
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(body[:5000])
    download.fetch(f"{server.url}/f.bin", dest, sha256=sha256(body))
    assert dest.read_bytes() == body
    assert server.requests == [("/f.bin", "bytes=5000-")] and server.sent == len(body) - 5000


def test_interrupted_download_is_kept_and_resumed(server, tmp_path):
    body = np.random.default_rng(1).bytes(50_000)
    server.files["/f.bin"] = body
    server.cut = 20_000  # the connection drops after 20 kB
    dest = tmp_path / "f.bin"
    with pytest.raises(DataError, match="rerun to resume"):
        download.fetch(f"{server.url}/f.bin", dest, sha256=sha256(body))
    part = dest.with_name("f.bin.part")
    assert part.stat().st_size == 20_000 and not dest.exists()
    download.fetch(f"{server.url}/f.bin", dest, sha256=sha256(body))
    assert dest.read_bytes() == body and server.requests[-1] == ("/f.bin", "bytes=20000-")
    assert server.sent == len(body)  # every byte crossed the wire exactly once


def test_server_ignoring_range_restarts_instead_of_appending(server, tmp_path):
    body = b"the real content " * 100
    server.files["/f.bin"] = body
    server.ranges = False  # answers 200 with the whole body to a Range request
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(b"stale bytes from somewhere else")
    download.fetch(f"{server.url}/f.bin", dest, sha256=sha256(body))
    assert dest.read_bytes() == body


def test_complete_part_answered_416_starts_over(server, tmp_path):
    body = b"x" * 1000
    server.files["/f.bin"] = body
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(body + b"junk")  # longer than the file: unusable
    download.fetch(f"{server.url}/f.bin", dest, sha256=sha256(body))
    assert dest.read_bytes() == body


# -----------------------------------------------------------------------------
# verification


def test_checksum_mismatch_names_file_and_hashes_and_quarantines(server, tmp_path):
    arrays, files = make_mnist()
    serve(server, "mnist", files)
    cfg = idx_cfg(server, tmp_path / "mnist", files)
    cfg.files.train_images.sha256 = "ab" * 32
    with pytest.raises(DataError) as e:
        download.load_idx_dataset(cfg)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and "ab" * 32 in msg
    assert sha256(files["train-images-idx3-ubyte.gz"]) in msg and "\n" not in msg
    root = tmp_path / "mnist"
    assert not (root / "train-images-idx3-ubyte.gz").exists()
    assert not (root / "train-images-idx3-ubyte.gz.part").exists()
    assert (root / "train-images-idx3-ubyte.gz.bad").exists()
    cfg.files.train_images.sha256 = sha256(files["train-images-idx3-ubyte.gz"])  # a rerun refetches
    (xtr, _), _ = download.load_idx_dataset(cfg)
    np.testing.assert_array_equal(xtr, arrays["train_images"])


def test_md5_mismatch_is_caught(server, tmp_path):
    archive, _ = make_cifar()
    cfg = cifar_cfg(server, tmp_path / "c", archive)
    cfg.md5 = "0" * 32
    with pytest.raises(DataError, match=r"cifar-10-binary.tar.gz: MD5 mismatch: expected 0{32}, got"):
        download.load_cifar10(cfg)


def test_tampered_bytes_from_server_are_rejected(server, tmp_path):
    _, files = make_mnist()
    cfg = idx_cfg(server, tmp_path / "mnist", files)  # pinned to the genuine files
    evil = bytearray(files["t10k-labels-idx1-ubyte.gz"])
    evil[-9] ^= 0xFF
    serve(server, "mnist", {**files, "t10k-labels-idx1-ubyte.gz": bytes(evil)})
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: SHA-256 mismatch"):
        download.load_idx_dataset(cfg)
    assert not (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_local_file_tampered_after_download_is_caught_on_next_load(server, tmp_path):
    archive, _ = make_cifar()
    cfg = cifar_cfg(server, tmp_path / "c", archive)
    download.load_cifar10(cfg)
    path = tmp_path / "c" / "cifar-10-binary.tar.gz"
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        download.load_cifar10(cfg)
    assert not path.exists()


def test_trust_on_first_use_records_sums_then_catches_changes(server, tmp_path, capsys):
    arrays, files = make_mnist()
    serve(server, "mnist", files)
    root = tmp_path / "mnist"
    cfg = idx_cfg(server, root, files, pin=False)
    download.load_idx_dataset(cfg)
    err = capsys.readouterr().err
    assert err.count("warning: no SHA-256 pinned") == 4
    sums = (root / "SHA256SUMS").read_text().splitlines()
    assert sorted(sums) == sorted(f"{sha256(b)}  {n}" for n, b in files.items())
    download.load_idx_dataset(cfg)  # now pinned: no more warnings
    assert "warning" not in capsys.readouterr().err
    # the publisher's copy changes and the local one is gone: the refetch no longer matches
    serve(server, "mnist", {"train-labels-idx1-ubyte.gz": idx_bytes(np.zeros(40, np.uint8), 0x801)})
    (root / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: SHA-256 mismatch"):
        download.load_idx_dataset(cfg)
    # a local file edited in place is caught too
    img = root / "t10k-images-idx3-ubyte.gz"
    tampered = bytearray(img.read_bytes())
    tampered[20] ^= 1
    img.write_bytes(bytes(tampered))
    with pytest.raises(DataError, match="t10k-images"):
        download.fetch(f"{server.url}/mnist/t10k-images-idx3-ubyte.gz", img)


def test_http_error_is_one_line_data_error(server, tmp_path):
    with pytest.raises(DataError, match=r"nope.bin: download of .* failed \(HTTP Error 404"):
        download.fetch(f"{server.url}/nope.bin", tmp_path / "nope.bin", sha256="0" * 64)


# -----------------------------------------------------------------------------
# format validation (the hash is pinned to the bad bytes, so parsing is what must catch them)


def write(tmp_path, name, data) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_truncated_gzip_is_data_error(tmp_path):
    good = idx_bytes(np.zeros((5, 28, 28), np.uint8), download.IDX_IMAGES)
    path = write(tmp_path, "x-idx3-ubyte.gz", good[:-12])
    with pytest.raises(DataError, match="x-idx3-ubyte.gz: corrupt or truncated gzip"):
        download.read_idx(path, download.IDX_IMAGES)


def test_bad_idx_magic_is_data_error(tmp_path):
    path = write(tmp_path, "labels.gz", idx_bytes(np.zeros(5, np.uint8), download.IDX_LABELS))
    with pytest.raises(DataError, match=r"labels.gz: bad IDX magic 0x00000801, expected 0x00000803"):
        download.read_idx(path, download.IDX_IMAGES)


def test_idx_size_inconsistent_with_header_is_data_error(tmp_path):
    header = struct.pack(">IIII", download.IDX_IMAGES, 5, 28, 28)
    path = write(tmp_path, "short.gz", gzip.compress(header + bytes(4 * 28 * 28)))
    with pytest.raises(DataError, match=r"short.gz: IDX header says shape \(5, 28, 28\)"):
        download.read_idx(path, download.IDX_IMAGES)


def test_truncated_idx_file_through_the_loader(server, tmp_path):
    _, files = make_mnist()
    files["t10k-images-idx3-ubyte.gz"] = files["t10k-images-idx3-ubyte.gz"][:-30]
    serve(server, "mnist", files)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        download.load_idx_dataset(idx_cfg(server, tmp_path / "m", files))


def test_short_cifar_record_is_data_error(server, tmp_path):
    cut = lambda name, data: data[:-7] if name.endswith("data_batch_3.bin") else data  # noqa: E731
    archive, _ = make_cifar(corrupt=cut)
    with pytest.raises(DataError, match=r"data_batch_3.bin: 12285 bytes is not a whole number of 3073"):
        download.load_cifar10(cifar_cfg(server, tmp_path / "c", archive))


def test_cifar_label_out_of_range_is_data_error(server, tmp_path):
    def bad_label(name, data):
        return b"\x0c" + data[1:] if name.endswith("test_batch.bin") else data

    archive, _ = make_cifar(corrupt=bad_label)
    with pytest.raises(DataError, match=r"test_batch.bin: label 12 out of range 0..9"):
        download.load_cifar10(cifar_cfg(server, tmp_path / "c", archive))


def test_truncated_cifar_archive_is_data_error(server, tmp_path):
    archive, _ = make_cifar()
    with pytest.raises(DataError, match="cifar-10-binary.tar.gz: corrupt or truncated archive"):
        download.load_cifar10(cifar_cfg(server, tmp_path / "c", archive[: len(archive) // 2]))


def test_tar_members_are_never_extracted_and_links_are_not_followed(server, tmp_path):
    """A hostile archive: a path-traversal member, and a symlink posing as a batch."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        evil = tarfile.TarInfo("../../escaped.txt")
        evil.size = 3
        tf.addfile(evil, io.BytesIO(b"pwn"))
        link = tarfile.TarInfo(download.CIFAR_TRAIN[0])
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    with pytest.raises(DataError, match="archive lacks cifar-10-batches-bin/data_batch_1.bin"):
        download.load_cifar10(cifar_cfg(server, tmp_path / "a" / "b", buf.getvalue()))
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "a" / "escaped.txt").exists()


# -----------------------------------------------------------------------------
# command line


def write_conf(conf_dir: Path, name: str, cfg) -> None:
    conf_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, conf_dir / f"{name}.yaml")


def test_cli_downloads_with_env_resolver(server, tmp_path, monkeypatch, capsys):
    _, files = make_mnist()
    serve(server, "mnist", files)
    cfg = idx_cfg(server, "unused", files)
    cfg.root = "${oc.env:ACTLAB_TEST_DATA}/mnist"  # resolved by the CLI, as in conf/data/*.yaml
    write_conf(tmp_path / "conf", "tiny", cfg)
    monkeypatch.setenv("ACTLAB_TEST_DATA", str(tmp_path / "data"))
    assert download.main(["tiny", "--conf-dir", str(tmp_path / "conf")]) == 0
    assert "verified" in capsys.readouterr().out
    assert (tmp_path / "data" / "mnist" / "train-images-idx3-ubyte.gz").exists()


def test_cli_failure_is_one_line_error_and_nonzero_exit(server, tmp_path, capsys):
    _, files = make_mnist()
    serve(server, "mnist", files)
    cfg = idx_cfg(server, tmp_path / "d", files)
    cfg.files.test_labels.sha256 = "cd" * 32
    write_conf(tmp_path / "conf", "tiny", cfg)
    assert download.main(["tiny", "--conf-dir", str(tmp_path / "conf")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "t10k-labels-idx1-ubyte.gz: SHA-256 mismatch" in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_cli_as_module_unknown_dataset(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "digits.yaml").write_text("name: digits\nloader: digits\n")
    src = str(Path(download.__file__).resolve().parents[1])
    r = subprocess.run(
        [sys.executable, "-m", "actlab.download", "nosuch", "--conf-dir", str(conf)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": src},
        timeout=60,
    )
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and r.stdout == ""
    assert r.stderr.startswith("error: no dataset config") and "available: digits" in r.stderr


def test_cli_dataset_without_download(tmp_path, capsys):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "digits.yaml").write_text("name: digits\nloader: digits\n")
    assert download.main(["digits", "--conf-dir", str(conf)]) == 1
    assert capsys.readouterr().err == "error: dataset 'digits' (loader 'digits') has nothing to download\n"


def test_real_configs_resolve_and_pin_hashes(monkeypatch):
    """The shipped configs parse, resolve ${oc.env:...}, and name loaders and hashes the code knows."""
    monkeypatch.setenv("ACTLAB_DATA", "/somewhere")
    conf = Path(__file__).resolve().parents[1] / "conf" / "data"
    for name in ("mnist", "fashion_mnist", "cifar10"):
        cfg = download.load_config(name, conf)
        assert cfg.loader in download.LOADERS and cfg.root == f"/somewhere/{name}" and cfg.val_size == 5000
        entries = cfg.files.values() if cfg.loader == "idx" else [cfg]
        for e in entries:
            assert e.sha256 is None or (len(e.sha256) == 64 and int(e.sha256, 16) >= 0)
            assert e.get("md5") is None or len(e.md5) == 32
