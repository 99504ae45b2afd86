"""Download, verify and parse the raw image datasets: MNIST, Fashion-MNIST (IDX) and CIFAR-10 (binary).

Every file is fetched once into ``cfg.root`` and checked against a SHA-256 (and an MD5 where the
publisher gives one) every time it is loaded, before a single byte is parsed. The pieces, top down:

    fetch(url, dest, sha256, md5)  resumable, atomic download + verification (the general primitive)
    load_idx_dataset(cfg)          the four IDX files of MNIST / Fashion-MNIST -> uint8 arrays
    load_cifar10(cfg)              the CIFAR-10 binary tarball, read in memory -> uint8 arrays
    python -m actlab.download NAME the same from the command line (conf/data/NAME.yaml)

A config may say ``sha256: null``: trust on first use. The first download's hash is then recorded
in ``<root>/SHA256SUMS`` (``sha256sum -c`` format) with a warning, and every later load is checked
against that record, so a file changed after the first download is still caught.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import hashlib
import http.client
import os
import struct
import sys
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from actlab import atomic
from actlab.config import CONF_DIR
from actlab.errors import DataError

SUMS_FILE = "SHA256SUMS"  # trust-on-first-use record, one "<sha256>  <name>" line per file
TIMEOUT_S = 60  # socket inactivity timeout: a stalled server fails instead of hanging forever
CHUNK = 1 << 20


# -----------------------------------------------------------------------------
# hashing and the trust-on-first-use record


def file_digests(path: Path) -> tuple[str, str]:
    """(sha256, md5) of a file in one streaming pass: CIFAR's 170 MB never sits in memory twice."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def read_sums(root: Path) -> dict[str, str]:
    path = root / SUMS_FILE
    if not path.exists():
        return {}
    sums = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            fields = line.split(maxsplit=1)
            if len(fields) != 2 or len(fields[0]) != 64:
                raise DataError(f"{path}:{i}: not a '<sha256>  <name>' line: {line.strip()!r}")
            sums[fields[1].lstrip("*")] = fields[0].lower()  # "*" marks binary mode in sha256sum's format
    return sums


def record_sum(root: Path, name: str, digest: str) -> None:
    sums = read_sums(root)
    sums[name] = digest
    # atomic (temp file, fsync, rename): a crash never leaves a half-written record
    atomic.write_text(root / SUMS_FILE, "".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))


def quarantine(path: Path, name: Path) -> Path:
    """Move a file that failed verification out of the way, so it is never used and a rerun refetches.
    It is kept (as <name>.bad, replacing an older one) rather than deleted, to be inspected."""
    bad = name.with_name(name.name + ".bad")
    os.replace(path, bad)
    return bad


def verify(path: Path, sha256: str | None, md5: str | None, shown: Path | None = None) -> str:
    """Check a file against the expected hashes; on mismatch quarantine it and raise DataError.
    Returns the actual SHA-256. ``shown`` is the name to report (the final path, for a .part file)."""
    shown = shown or path
    actual_sha, actual_md5 = file_digests(path)
    for algo, expected, actual in (("SHA-256", sha256, actual_sha), ("MD5", md5, actual_md5)):
        if expected and expected.lower() != actual:
            bad = quarantine(path, shown)
            raise DataError(
                f"{shown}: {algo} mismatch: expected {expected.lower()}, got {actual} "
                f"(moved to {bad.name}; rerun to download again)"
            )
    return actual_sha


@contextlib.contextmanager
def dir_lock(root: Path):
    """Exclusive lock on a data directory, so parallel runs (a sweep, snakemake -j) neither append to
    the same .part file nor race on SHA256SUMS. A no-op where fcntl does not exist (Windows)."""
    try:
        import fcntl  # imported here: POSIX only
    except ImportError:
        yield
        return
    with open(root / ".download.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# -----------------------------------------------------------------------------
# download


def _download(url: str, part: Path) -> None:
    """Fetch url into part, continuing an existing part file with an HTTP Range request.

    A server that ignores Range answers 200 with the whole body: we then start over instead of
    appending (which would corrupt the file). A 416 means the part is no prefix we can continue
    (already complete, or longer than the file): start over too rather than guess.
    """
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "actlab"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            part.unlink()
            return _download(url, part)
        raise
    with resp:
        resume = (
            bool(have) and resp.status == 206 and resp.headers.get("Content-Range", "").startswith(f"bytes {have}-")
        )
        if resp.status == 206 and not resume:  # a range we did not ask for: never splice it in
            part.unlink(missing_ok=True)
            raise http.client.HTTPException(f"unexpected partial content {resp.headers.get('Content-Range')!r}")
        print(
            f"{'resuming' if resume else 'downloading'} {url}" + (f" at byte {have}" if resume else ""), file=sys.stderr
        )
        size = resp.headers.get("Content-Length")
        got = 0
        with open(part, "ab" if resume else "wb") as f:
            while block := resp.read(CHUNK):
                f.write(block)
                got += len(block)
    # urllib returns a short body without complaint when the connection drops: check it ourselves
    if size is not None and got < int(size):
        raise http.client.HTTPException(f"connection closed after {got} of {size} bytes")


def check_format(path: Path, check, shown: Path) -> None:
    """Run the format's own check (header, sizes, gzip CRC) on a file about to be trusted on first use;
    on failure quarantine it and raise DataError. A hash is never recorded for a file that fails it: a
    truncated download (a server that closes early without Content-Length) is not made permanent."""
    try:
        check(path)
    except DataError as e:
        bad = quarantine(path, shown)
        reason = str(e).replace(str(path), str(shown))
        raise DataError(
            f"{reason} (no SHA-256 pinned, so not trusted; moved to {bad.name}; rerun to download again)"
        ) from None


def fetch(url: str, dest, sha256: str | None = None, md5: str | None = None, check=None) -> Path:
    """Make sure ``dest`` holds the verified content of ``url``; return its path.

    Downloaded once: an existing ``dest`` is not fetched again, only verified (every call). The
    download goes to ``dest.part`` (kept on failure, so a rerun resumes it) and is moved into place
    with os.replace only after it verified, so ``dest`` never holds unverified or partial data.

    With ``sha256=None`` the hash is taken from ``<dest dir>/SHA256SUMS``; a file not listed there is
    trusted on first use and its hash recorded, with a warning, but only if ``check(path)`` (the
    format's own header/size check; raises DataError) passes. ``md5``, when given, is checked too.
    Any failure raises DataError with a one-line message naming the file.
    """
    dest = Path(dest)
    root = dest.parent
    root.mkdir(parents=True, exist_ok=True)
    with dir_lock(root):
        pinned = sha256 or read_sums(root).get(dest.name)
        if dest.exists():
            actual = verify(dest, pinned, md5)
            if not pinned and check is not None:
                check_format(dest, check, dest)
        else:
            part = dest.with_name(dest.name + ".part")
            try:
                _download(url, part)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
                reason = e if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", None) or e
                then = (
                    f"rerun to resume from {part.name}" if part.exists() and part.stat().st_size else "rerun to retry"
                )
                raise DataError(f"{dest}: download of {url} failed ({reason}); {then}") from e
            actual = verify(part, pinned, md5, shown=dest)
            if not pinned and check is not None:
                check_format(part, check, dest)
            os.replace(part, dest)
        if not pinned:
            record_sum(root, dest.name, actual)
            print(
                f"warning: no SHA-256 pinned in the config for {dest.name}; trusting this copy and "
                f"recording {actual} in {root / SUMS_FILE}",
                file=sys.stderr,
            )
    return dest


# -----------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST)

IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801  # magic: 0x08 = unsigned byte, then the number of dims


def _read_bytes(path: Path, gz: bool | None = None) -> bytes:
    """The file's content, gunzipped if it is a .gz (``gz``: the name's, for a .part file); gzip
    checks its CRC-32 and length trailer."""
    data = path.read_bytes()
    if not (path.suffix == ".gz" if gz is None else gz):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; truncation is EOFError
        raise DataError(f"{path}: corrupt or truncated gzip data ({e or type(e).__name__})") from None


def read_idx(path, magic: int, gz: bool | None = None) -> np.ndarray:
    """Parse an IDX file of unsigned bytes: big-endian magic, one big-endian uint32 per dimension,
    then exactly prod(dims) bytes of data. ``gz``: gzipped (default: the name ends in .gz)."""
    path = Path(path)
    raw = _read_bytes(path, gz)
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{path}: bad IDX magic 0x{found:08x}, expected 0x{magic:08x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX header says shape {dims} = {expected} bytes of data, file has {len(raw) - header}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _check_labels(y: np.ndarray, where: str, num_classes: int = 10) -> np.ndarray:
    if len(y) and y.max() >= num_classes:
        raise DataError(f"{where}: label {int(y.max())} out of range 0..{num_classes - 1}")
    return y.astype(np.int64)


def load_idx_dataset(cfg):
    """MNIST-format dataset -> ((x_train uint8 (N, H, W), y_train int64 (N,)), (x_test, y_test)).

    cfg: root, base_url, files.{train,test}_{images,labels}.{name, sha256, optional md5}.
    """
    root = Path(cfg.root)
    splits = []
    for split in ("train", "test"):
        arrays = []
        for kind, magic in (("images", IDX_IMAGES), ("labels", IDX_LABELS)):
            f = cfg.files[f"{split}_{kind}"]
            path = fetch(
                cfg.base_url.rstrip("/") + "/" + f.name,
                root / f.name,
                sha256=f.get("sha256"),
                md5=f.get("md5"),
                check=functools.partial(read_idx, magic=magic, gz=f.name.endswith(".gz")),
            )
            arrays.append(read_idx(path, magic))
        x, y = arrays
        if len(x) != len(y):
            raise DataError(f"{root}: {split} has {len(x)} images but {len(y)} labels")
        splits.append((x, _check_labels(y, str(root / cfg.files[f"{split}_labels"].name))))
    return tuple(splits)


# -----------------------------------------------------------------------------
# CIFAR-10, binary version: records of 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B)

CIFAR_DIR = "cifar-10-batches-bin"
CIFAR_TRAIN = [f"{CIFAR_DIR}/data_batch_{i}.bin" for i in range(1, 6)]
CIFAR_TEST = [f"{CIFAR_DIR}/test_batch.bin"]
CIFAR_RECORD = 1 + 3 * 32 * 32


def read_tar_members(path: Path, names: list[str]) -> dict[str, bytes]:
    """Read the named regular-file members of a .tar.gz straight into memory. Nothing is extracted
    to disk, so a hostile archive cannot write outside the data directory (no path traversal)."""
    wanted, found = set(names), {}
    try:
        with tarfile.open(path, "r:gz") as tf:
            for member in tf:  # one forward pass over the gzip stream; no seeking back
                if member.name in wanted and member.isfile():  # links and devices are never read
                    found[member.name] = tf.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated archive ({e or type(e).__name__})") from None
    missing = [n for n in names if n not in found]
    if missing:
        raise DataError(f"{path}: archive lacks {', '.join(missing)}")
    return found


def parse_cifar_batch(data: bytes, where: str):
    """One CIFAR binary batch -> (x uint8 (N, 3, 32, 32), y int64 (N,))."""
    if not data or len(data) % CIFAR_RECORD:
        raise DataError(
            f"{where}: {len(data)} bytes is not a whole number of {CIFAR_RECORD}-byte "
            f"records (truncated or not a CIFAR-10 binary batch)"
        )
    rec = np.frombuffer(data, np.uint8).reshape(-1, CIFAR_RECORD)
    return rec[:, 1:].reshape(-1, 3, 32, 32), _check_labels(rec[:, 0], where)


def check_cifar_archive(path: Path) -> None:
    """The archive is whole (gzip CRC, tar structure) and every batch is whole records."""
    for name, data in read_tar_members(path, CIFAR_TRAIN + CIFAR_TEST).items():
        parse_cifar_batch(data, f"{path}:{name}")


def load_cifar10(cfg):
    """CIFAR-10 binary tarball -> ((x_train uint8 (N, 3, 32, 32), y_train int64), (x_test, y_test)).

    cfg: root, url, optional archive (default: the url's file name), sha256, optional md5.
    """
    archive = cfg.get("archive") or cfg.url.rsplit("/", 1)[-1]
    path = fetch(
        cfg.url, Path(cfg.root) / archive, sha256=cfg.get("sha256"), md5=cfg.get("md5"), check=check_cifar_archive
    )
    members = read_tar_members(path, CIFAR_TRAIN + CIFAR_TEST)
    out = []
    for names in (CIFAR_TRAIN, CIFAR_TEST):
        batches = [parse_cifar_batch(members[n], f"{path}:{n}") for n in names]
        out.append((np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])))
    return tuple(out)


# -----------------------------------------------------------------------------
# command line: python -m actlab.download mnist

LOADERS = {"idx": load_idx_dataset, "cifar10": load_cifar10}


def _config_dir() -> Path:
    """conf/data of the project (actlab.config.CONF_DIR: $ACTLAB_CONF, else the checkout's conf/)."""
    return CONF_DIR / "data"


def load_config(name: str, conf_dir: Path):
    path = conf_dir / f"{name}.yaml"
    if not path.exists():
        have = ", ".join(sorted(p.stem for p in conf_dir.glob("*.yaml"))) or "none"
        raise DataError(f"no dataset config {path} (available: {have})")
    cfg = OmegaConf.load(path)
    OmegaConf.resolve(cfg)  # ${oc.env:ACTLAB_DATA,data/raw} and friends
    return cfg


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m actlab.download", description="Download and verify a dataset from conf/data/<name>.yaml."
    )
    p.add_argument("dataset", help="config name, e.g. mnist, fashion_mnist, cifar10")
    p.add_argument("--conf-dir", type=Path, default=None, help="where the dataset yamls are (default conf/data)")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.dataset, args.conf_dir or _config_dir())
        if cfg.get("loader") not in LOADERS:
            raise DataError(f"dataset {args.dataset!r} (loader {cfg.get('loader')!r}) has nothing to download")
        (xtr, ytr), (xte, yte) = LOADERS[cfg.loader](cfg)
    except Exception as e:  # the CLI's contract: one line on stderr, a non-zero exit, no traceback
        msg = str(e) if isinstance(e, DataError) else f"{type(e).__name__}: {e}"
        print(f"error: {' '.join(msg.split())}", file=sys.stderr)
        return 1
    print(f"{args.dataset}: verified; train {xtr.shape}, test {xte.shape}, in {cfg.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
