"""Only the CPython extension reku._rkernel lives here (everything else is in pyproject.toml): the native
ternary kernels of modules/rkernel/rk_core.c, the same C core the board module is built from, plus the
host-only fast path of rk_host.c (AVX2 chosen at run time; never part of the board module)."""

from setuptools import Extension, setup

RK = "modules/rkernel/"

setup(
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
