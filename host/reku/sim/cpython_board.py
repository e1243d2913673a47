"""The virtual board on CPython: run the board's main.py with the simulated hardware on the path.
Started by reku.sim with `python -I -S cpython_board.py BOARD_DIR HAL_DIR` (no site-packages: the
firmware sees only its own files, as on a board), the UART fd in REKU_SIM_UART_FD."""
import os
import sys

board, hal = sys.argv[1], sys.argv[2]
os.chdir(board)
sys.path[:0] = [board, hal]
import main  # noqa: E402,F401  (the firmware's entry point; it serves until killed)
