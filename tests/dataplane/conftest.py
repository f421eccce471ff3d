import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))


def pytest_sessionfinish(session, exitstatus):
    """EAL leaves its runtime directory behind: remove the ones this run's prefixes made."""
    import os
    import shutil
    for prefix in ("sw-pcap", "sw-pcapf", "sw-pcapg", "sw-pflog"):
        shutil.rmtree(f"/var/run/dpdk/{prefix}-{os.getpid()}", ignore_errors=True)
