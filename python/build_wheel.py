"""Build the platform wheel of the `litestream_vfs` Python package from a built extension,
with the standard library only (a wheel is a zip with METADATA, WHEEL and RECORD).

    python3 python/build_wheel.py <liblitestream_vfs.so> <version> <out dir>

Use `bash scripts/build-python-wheel.sh`, which builds the extension first."""
import base64
import hashlib
import sys
import sysconfig
import zipfile
from pathlib import Path

DIST = "litestream_vfs_rs"


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main(lib: str, version: str, out: str) -> Path:
    here = Path(__file__).resolve().parent
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    ext_name = "litestream-vfs.dylib" if plat.startswith("macosx") else "litestream-vfs.so"
    tag = f"py3-none-{plat}"
    info = f"{DIST}-{version}.dist-info"
    readme = (here / "README.md").read_text()
    files = {
        "litestream_vfs/__init__.py": (here / "litestream_vfs" / "__init__.py").read_text()
        .replace("@VERSION@", version).encode(),
        f"litestream_vfs/{ext_name}": Path(lib).read_bytes(),
        f"{info}/METADATA": (
            "Metadata-Version: 2.1\n"
            f"Name: {DIST.replace('_', '-')}\n"
            f"Version: {version}\n"
            "Summary: ltxvfs: the litestream SQLite VFS in Rust (drop-in for litestream-vfs)\n"
            "License: Apache-2.0\n"
            "Requires-Python: >=3.8\n"
            "Description-Content-Type: text/markdown\n\n" + readme).encode(),
        f"{info}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: ltxvfs build_wheel.py\n"
                          f"Root-Is-Purelib: false\nTag: {tag}\n").encode(),
        f"litestream_vfs/datasette_plugin.py": (here / "litestream_vfs" / "datasette_plugin.py").read_bytes(),
        f"litestream_vfs/sqlite_utils_plugin.py": (here / "litestream_vfs" / "sqlite_utils_plugin.py").read_bytes(),
        f"{info}/top_level.txt": b"litestream_vfs\n",
        # Datasette and the sqlite-utils CLI load plugins from these groups at import, before
        # they open any file.
        f"{info}/entry_points.txt": (b"[datasette]\nlitestream_vfs = litestream_vfs.datasette_plugin\n\n"
                                     b"[sqlite_utils]\nlitestream_vfs = litestream_vfs.sqlite_utils_plugin\n"),
    }
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{DIST}-{version}-{tag}.whl"
    record = [record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            zi = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = (0o755 if name.endswith((".so", ".dylib")) else 0o644) << 16
            z.writestr(zi, data, zipfile.ZIP_DEFLATED)
        z.writestr(zipfile.ZipInfo(f"{info}/RECORD", date_time=(2020, 1, 1, 0, 0, 0)),
                   "\n".join(record) + "\n")
    print(wheel)
    return wheel


if __name__ == "__main__":
    main(*sys.argv[1:4])
