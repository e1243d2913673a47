"""What pyproject.toml cannot say: the CPython extension reku._rkernel, and the repository trees the package needs
at run time, carried in the wheel.

reku._rkernel: the native ternary kernels of modules/rkernel/rk_core.c, the same C core the board module is built
from, plus the host-only fast path of rk_host.c (AVX2 chosen at run time; never part of the board module).

reku/_tree: a copy of TREE (the firmware that `reku sim` and `reku deploy` put on a board, the board profiles, the
bundled skills and models, the C modules and frozen manifest `reku firmware build` gives a MicroPython tree), made when a wheel is built. An editable install reads them from the repository
instead (reku.paths)."""

import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

RK = "modules/rkernel/"
TREE = {"firmware": ("*.py",), "hw/boards": ("*.json",), "skills": ("*.json", "*.jsonl", "*.rku"),
        "modules": ("*.c", "*.h", "*.cmake", "*.mk", "manifest.py", "*.sh")}


class BuildPyWithTree(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for top, patterns in TREE.items():
            for pattern in patterns:
                for src in Path(top).rglob(pattern):
                    if "__pycache__" in src.parts:
                        continue
                    dst = Path(self.build_lib) / "reku" / "_tree" / src
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, dst)


setup(
    cmdclass={"build_py": BuildPyWithTree},
    ext_modules=[
        Extension(
            "reku._rkernel",
            sources=[RK + "cpy_rkernel.c", RK + "rk_core.c", RK + "rk_baseline.c", RK + "rk_host.c"],
            include_dirs=[RK],
            depends=[RK + "rk_core.h", RK + "rk_baseline.h", RK + "rk_host.h"],
            extra_compile_args=["-std=c99"],
        )
    ],
)
