"""PEP 517 build backend for `pip install ./python`: builds the release extension with cargo in
the repository this directory belongs to, then packs it with build_wheel.py (standard library
only). `bash scripts/build-python-wheel.sh` makes the same wheel without pip."""
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build_wheel as packer  # noqa: E402  (the sibling module, on the path just above)


def _repo() -> Path:
    repo = HERE.parent
    if not (repo / "ext" / "Cargo.toml").is_file():
        raise RuntimeError(
            f"litestream-vfs-rs: {repo} is not the ltxvfs repository; install from a checkout "
            "(pip install ./python) or from a wheel made by scripts/build-python-wheel.sh")
    return repo


def _version(repo: Path) -> str:
    for line in (repo / "ext" / "Cargo.toml").read_text().splitlines():
        if line.startswith("version"):
            return line.split('"')[1]
    raise RuntimeError("litestream-vfs-rs: no version in ext/Cargo.toml")


def _build_extension(repo: Path) -> Path:
    cmd = ["cargo", "build", "--release", "-p", "litestream-vfs"]
    try:
        subprocess.run(cmd, cwd=repo, check=True, stdout=sys.stderr)
    except FileNotFoundError:
        raise RuntimeError("litestream-vfs-rs: building from source needs cargo (https://rustup.rs)") from None
    target = Path(os.environ.get("CARGO_TARGET_DIR") or repo / "target")
    if not target.is_absolute():
        target = repo / target
    lib = "liblitestream_vfs.dylib" if sys.platform == "darwin" else "liblitestream_vfs.so"
    return target / "release" / lib


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    repo = _repo()
    wheel = packer.main(str(_build_extension(repo)), _version(repo), wheel_directory)
    return wheel.name


def get_requires_for_build_wheel(config_settings=None):
    return []
