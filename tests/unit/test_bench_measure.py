"""The process counters the benchmark reads from /proc (bench.measure)."""

from __future__ import annotations

import os
import threading

from bench.measure import io_bytes


def test_io_bytes_count_reads_and_writes_of_the_process_and_of_one_thread() -> None:
    read_end, write_end = os.pipe()
    try:
        before = io_bytes(os.getpid())
        os.write(write_end, b"x" * 5000)
        os.read(read_end, 5000)
        after = io_bytes(os.getpid())
        assert after[0] - before[0] >= 5000
        assert after[1] - before[1] >= 5000

        counted: list[tuple[int, int]] = []

        def in_a_thread() -> None:
            tid = threading.get_native_id()
            start = io_bytes(os.getpid(), tid)
            os.write(write_end, b"y" * 3000)
            end = io_bytes(os.getpid(), tid)
            counted.append((end[0] - start[0], end[1] - start[1]))

        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
        os.read(read_end, 3000)  # by this thread: not the other one's
        (read, written) = counted[0]
        assert written == 3000
        assert read < 3000  # only its own read of /proc
    finally:
        os.close(read_end)
        os.close(write_end)
