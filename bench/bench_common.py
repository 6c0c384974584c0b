"""Helpers shared by the Python peers of ipckit's benchmarks."""
import time


def quantile(sorted_values, q):
    if not sorted_values:
        return 0.0
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def busy_fraction(window_s):
    """Busy share of all CPUs over window_s, from /proc/stat (steal counts as busy)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return sum(v) - v[3] - v[4], sum(v)
    b0, t0 = sample()
    time.sleep(window_s)
    b1, t1 = sample()
    return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def wait_for_quiet(max_wait_s):
    """Waits (bounded) for other programs to leave the CPUs idle, as the C++ benchmarks do; False if they never did."""
    if max_wait_s <= 0:
        return True
    give_up = time.monotonic() + max_wait_s
    while True:
        try:
            if busy_fraction(0.02) < 0.10:
                return True
        except OSError:
            return True
        if time.monotonic() >= give_up:
            return False
