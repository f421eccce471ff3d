import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))


def pytest_sessionfinish(session, exitstatus):
    """EAL leaves its runtime directory behind: remove those of every prefix pcap_config()
    handed out in this run."""
    import shutil
    from pcapcfg import PREFIXES
    for prefix in PREFIXES:
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
