# The reku firmware frozen into a custom MicroPython image (`reku firmware build`, docs/custom-firmware.md): every
# board module of rkfw, compiled into the image's flash, so that importing it takes no heap for its code. Not
# frozen: rkfw/boards.py (the profile validator the host runs; the board reads its profile as plain JSON) and
# main.py, which `reku deploy` keeps on the filesystem (MicroPython runs main.py from there).
# tests/test_firmware_build.py checks that this list is every module of firmware/rkfw but those.
package(
    "rkfw",
    files=[
        "__init__.py",
        "admin.py",
        "app.py",
        "auth.py",
        "boot.py",
        "fp4.py",
        "fp4_viper.py",
        "i2c_target.py",
        "infer.py",
        "kernels.py",
        "kernels_py.py",
        "kernels_viper.py",
        "lowrank.py",
        "memory.py",
        "port.py",
        "proto.py",
        "rku.py",
        "status.py",
        "steps.py",
        "teach.py",
        "transport.py",
    ],
    base_path="../firmware",
    opt=3,
)
