"""EAL test on one net_pcap port: `log` rules write the packets they decide to a pcap file of
link type DLT_PFLOG (117), which tshark decodes as it decodes OpenBSD's pflog0.

Client 192.0.2.10 and server 198.51.100.10 sit behind the one port ("router on a stick");
every routed packet is filtered inbound and outbound on it. Packets are read in file order,
one per burst, so each request has been through both filter passes before its reply.
"""

import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, IPv6, Raw, rdpcap, wrpcap

from netlab import find_binary, parse_counters
from pcapcfg import one_port_lan, pcap_config

FW_MAC, CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:01", "02:00:00:00:0c:01", "02:00:00:00:0d:01"
CLIENT, SERVER = "192.0.2.10", "198.51.100.10"
PASS, BLOCK = 0, 1  # PF_PASS, PF_DROP
IN, OUT = 1, 2      # PF_IN, PF_OUT

RULES = [
    "block log all",                               # 0
    "pass in log on lan proto tcp to port 80",     # 1: logs the state-creating packet only
    "pass in on lan proto udp",                    # 2: no log
    "pass out on lan all",                         # 3: no log
    "block out log on lan proto udp to port 9999",  # 4
]

FIELDS = ["pflog.length", "pflog.af", "pflog.rulenr", "pflog.action", "pflog.dir", "pflog.ifname",
          "pflog.reason", "ip.src", "ip.dst", "ip.id", "ipv6.src", "pflog.sport", "pflog.dport",
          "frame.len", "frame.cap_len", "_ws.malformed"]


def config(tmp: Path) -> str:
    return pcap_config(name="pflog", prefix="sw-pflog", burst=1,
                       control={"socket": f"{tmp}/syncwall.sock", "pflog": f"{tmp}/pflog.pcap"},
                       interfaces=one_port_lan(tmp, FW_MAC), rules=RULES)


def frm(src_mac, pkt):
    return Ether(src=src_mac, dst=FW_MAC) / pkt


def c2s(ident, l4):
    return frm(CLIENT_MAC, IP(src=CLIENT, dst=SERVER, id=ident) / l4)


def s2c(ident, l4):
    return frm(SERVER_MAC, IP(src=SERVER, dst=CLIENT, id=ident) / l4)


def tshark_rows(path: Path) -> list[dict[str, str]]:
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-E", "separator=\t",
                          *sum((["-e", f] for f in FIELDS), [])],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return [dict(zip(FIELDS, line.split("\t"))) for line in out.splitlines()]


@pytest.fixture(scope="module")
def result():
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="syncwall-pflog-"))
    pkts = [
        frm(CLIENT_MAC, ARP(op=2, hwsrc=CLIENT_MAC, psrc=CLIENT, hwdst=FW_MAC, pdst="192.0.2.1")),
        frm(SERVER_MAC, ARP(op=2, hwsrc=SERVER_MAC, psrc=SERVER, hwdst=FW_MAC, pdst="198.51.100.1")),
        # A connection to port 80: rule 1 creates the state; the rest of it matches the state.
        c2s(1, TCP(sport=40000, dport=80, flags="S", seq=1000, window=8192)),
        s2c(2, TCP(sport=80, dport=40000, flags="SA", seq=5000, ack=1001, window=8192)),
        c2s(3, TCP(sport=40000, dport=80, flags="A", seq=1001, ack=5001, window=8192)),
        # UDP passed by rules without log, in and out.
        c2s(4, UDP(sport=5000, dport=53) / Raw(b"q")),
        # Blocked inbound by `block log all`.
        c2s(5, TCP(sport=40001, dport=22, flags="S", seq=1)),
        s2c(6, ICMP(type=8, id=77, seq=1)),
        # Passed inbound, blocked outbound by rule 4; longer than the snap length.
        c2s(7, UDP(sport=5001, dport=9999) / Raw(b"x" * 300)),
        # IPv6, blocked inbound by `block log all`.
        frm(CLIENT_MAC, IPv6(src="2001:db8::10", dst="2001:db8::20")
            / TCP(sport=40002, dport=22, flags="S")),
    ]
    wrpcap(str(tmp / "in.pcap"), pkts)
    (tmp / "fw.yaml").write_text(config(tmp))
    proc = subprocess.Popen([str(find_binary("syncwall")), "-c", str(tmp / "fw.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("syncwall: ready"):
            break
    try:
        proc.wait(timeout=2.5)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    output = "".join(lines) + out
    assert proc.returncode == 0, output
    pflog = tmp / "pflog.pcap"
    assert pflog.exists(), output
    return {"output": output, "counters": parse_counters(output), "pflog": pflog,
            "rows": tshark_rows(pflog), "out": rdpcap(str(tmp / "out.pcap"))}


def logged(result):
    """(rule, action, dir, ifname, src, dst, ip id or "") of each logged packet."""
    return sorted((int(r["pflog.rulenr"]), int(r["pflog.action"]), int(r["pflog.dir"]),
                   r["pflog.ifname"], r["ip.src"] or r["ipv6.src"], r["ip.dst"],
                   int(r["ip.id"], 16) if r["ip.id"] else 0) for r in result["rows"])


def test_file_has_the_pflog_link_type(result):
    head = result["pflog"].read_bytes()[:24]
    assert head[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4")  # pcap magic
    order = "little" if head[:4] == b"\xd4\xc3\xb2\xa1" else "big"
    assert int.from_bytes(head[20:24], order) == 117  # DLT_PFLOG


def test_tshark_decodes_rule_action_direction_and_interface(result):
    assert logged(result) == [
        (0, BLOCK, IN, "lan", CLIENT, SERVER, 5),
        (0, BLOCK, IN, "lan", SERVER, CLIENT, 6),
        (0, BLOCK, IN, "lan", "2001:db8::10", "", 0),
        (1, PASS, IN, "lan", CLIENT, SERVER, 1),
        (4, BLOCK, OUT, "lan", CLIENT, SERVER, 7),
    ], result["output"]
    for r in result["rows"]:
        assert r["pflog.length"] == "100"
        assert r["pflog.reason"] == "0"  # PFRES_MATCH
        assert r["_ws.malformed"] == ""


def test_address_family_and_ports_in_the_header(result):
    by_id = {int(r["ip.id"], 16) if r["ip.id"] else 0: r for r in result["rows"]}
    assert by_id[1]["pflog.af"] == "2"  # OpenBSD's AF_INET
    assert (by_id[1]["pflog.sport"], by_id[1]["pflog.dport"]) == ("40000", "80")
    assert by_id[0]["pflog.af"] == "24"  # OpenBSD's AF_INET6
    assert (by_id[0]["pflog.sport"], by_id[0]["pflog.dport"]) == ("40002", "22")


def test_pass_keep_state_logs_the_state_creating_packet_only(result):
    ids = {int(r["ip.id"], 16) for r in result["rows"] if r["ip.id"]}
    assert 1 in ids
    assert not ids & {2, 3}, "packets matching the state were logged"
    # ... and they went through all the same.
    sent = {p[IP].id for p in result["out"] if IP in p}
    assert {1, 2, 3} <= sent, result["output"]


def test_packets_of_rules_without_log_are_not_in_the_file(result):
    ids = {int(r["ip.id"], 16) for r in result["rows"] if r["ip.id"]}
    assert 4 not in ids
    assert any(UDP in p and p[UDP].dport == 53 for p in result["out"]), result["output"]


def test_long_packet_is_cut_at_the_snap_length_with_its_length_kept(result):
    row = next(r for r in result["rows"] if r["ip.id"] and int(r["ip.id"], 16) == 7)
    ip_len = 20 + 8 + 300
    assert int(row["frame.len"]) == 100 + ip_len
    assert int(row["frame.cap_len"]) == 100 + 160


def test_no_log_entry_was_dropped(result):
    assert result["counters"].get("pflog_dropped") == 0, result["output"]
