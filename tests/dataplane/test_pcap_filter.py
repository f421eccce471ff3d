"""EAL test on one net_pcap port ("router on a stick"): the stateful filter with crafted
TCP, UDP and ICMP packets read in file order, one per burst, so that each request has been through both
filter passes before its reply arrives (as on a wire, where the reply follows the
transmitted request).

Client 192.0.2.10 and server 198.51.100.10 both sit behind the one port; every routed
packet is filtered inbound and outbound on it, as pf does.
"""

from pathlib import Path

import pytest
from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, Raw, rdpcap, wrpcap

from netlab import parse_counters, run_syncwall_for
from pcapcfg import one_port_lan, pcap_config

FW_MAC, CLIENT_MAC, SERVER_MAC, ROUTER_MAC = (
    "02:00:00:00:00:01", "02:00:00:00:0c:01", "02:00:00:00:0d:01", "02:00:00:00:0e:01")
CLIENT, SERVER, ROUTER = "192.0.2.10", "198.51.100.10", "198.51.100.254"


def config(tmp: Path) -> str:
    # One packet per burst: a reply is never in its request's burst.
    return pcap_config(name="pcap-filter", prefix="sw-pcapf", burst=1,
                       control={"socket": f"{tmp}/fw.sock"}, interfaces=one_port_lan(tmp, FW_MAC),
                       rules=["block all", "pass in on lan from 192.0.2.0/24 to any",
                              "pass out on lan all"],
                       extra="limits: { states: 8 }\n")


def frm(src_mac, pkt):
    return Ether(src=src_mac, dst=FW_MAC) / pkt


def c2s(flags, seq, ack=0, data=b"", sport=40000):
    return frm(CLIENT_MAC, IP(src=CLIENT, dst=SERVER) / TCP(sport=sport, dport=80, flags=flags, seq=seq, ack=ack, window=8192) / Raw(data))


def s2c(flags, seq, ack=0, data=b"", dport=40000, ident=0):
    return frm(SERVER_MAC, IP(src=SERVER, dst=CLIENT, id=ident) / TCP(sport=80, dport=dport, flags=flags, seq=seq, ack=ack, window=8192) / Raw(data))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pcap-filter")
    syn = c2s("S", 1000)
    pkts = [
        frm(CLIENT_MAC, ARP(op=2, hwsrc=CLIENT_MAC, psrc=CLIENT, hwdst=FW_MAC, pdst="192.0.2.1")),
        frm(SERVER_MAC, ARP(op=2, hwsrc=SERVER_MAC, psrc=SERVER, hwdst=FW_MAC, pdst="198.51.100.1")),
        syn,
        s2c("SA", 5000, 1001, ident=1),
        c2s("A", 1001, 5001),
        s2c("PA", 5001, 1001, b"in window", ident=2),
        # Unsolicited from the server's side: no state, and only the client's net may start.
        s2c("SA", 7000, 1, dport=41000, ident=3),
        s2c("A", 7000, 1, dport=41001, ident=4),
        s2c("FA", 7000, 1, dport=41002, ident=5),
        # On the real connection but far outside the window.
        s2c("PA", 5001 + 3_000_000, 1001, b"far away", ident=6),
        # A new SYN on the established connection: dropped, answered with a challenge ACK.
        c2s("S", 9999),
        # An ICMP error quoting the client's SYN (the real connection), and a forged one.
        frm(ROUTER_MAC, IP(src=ROUTER, dst=CLIENT, id=7) / ICMP(type=3, code=1) / bytes(syn[IP])[:28]),
        frm(ROUTER_MAC, IP(src=ROUTER, dst=CLIENT, id=8) / ICMP(type=3, code=1)
            / bytes(c2s("S", 1000, sport=43210)[IP])[:28]),
        # UDP flows until the state limit (8): the TCP connection holds 2, each flow 2 more.
        *[frm(CLIENT_MAC, IP(src=CLIENT, dst=SERVER, id=100 + i) / UDP(sport=5000 + i, dport=53) / Raw(b"q"))
          for i in range(4)],
    ]
    wrpcap(str(tmp / "in.pcap"), pkts)
    (tmp / "fw.yaml").write_text(config(tmp))
    code, output = run_syncwall_for(tmp / "fw.yaml", 2.5)
    assert code == 0, output
    return {"output": output, "counters": parse_counters(output), "out": rdpcap(str(tmp / "out.pcap"))}


def sent(result, pred):
    return [p for p in result["out"] if pred(p)]


def test_handshake_and_reply_pass_through_state(result):
    to_server = sent(result, lambda p: TCP in p and p[IP].dst == SERVER and p[TCP].sport == 40000)
    to_client = sent(result, lambda p: TCP in p and p[IP].dst == CLIENT and p[TCP].dport == 40000
                     and str(p[TCP].flags) != "A")  # (the challenge ACK has its own test)
    # (Order on the wire may differ: the first packets wait for address resolution.)
    assert sorted(str(p[TCP].flags) for p in to_server) == ["A", "S"], result["output"]
    assert sorted(str(p[TCP].flags) for p in to_client) == ["PA", "SA"]
    assert [bytes(p[Raw]) for p in to_client if Raw in p] == [b"in window"]
    assert all(p[Ether].src == FW_MAC for p in to_server + to_client)


def test_unsolicited_syn_ack_ack_and_fin_are_dropped(result):
    assert not sent(result, lambda p: IP in p and p[IP].id in (3, 4, 5))
    assert result["counters"].get("drop.filter_block", 0) >= 3, result["output"]


def test_data_outside_the_window_is_dropped(result):
    assert not sent(result, lambda p: IP in p and p[IP].id == 6)
    # The far-away segment, and the SYN answered with a challenge ACK.
    assert result["counters"].get("drop.filter_state_mismatch") == 2, result["output"]


def test_syn_on_established_connection_gets_a_challenge_ack(result):
    to_client = sent(result, lambda p: TCP in p and p[IP].dst == CLIENT and p[TCP].dport == 40000
                     and str(p[TCP].flags) == "A")
    assert len(to_client) == 1, result["output"]
    ack = to_client[0]
    # From the server's side, with pf's numbers: the server's seqlo (its next sequence
    # number) and the client's seqlo (its ISN: pf moves seqlo only with data).
    assert ack[IP].src == SERVER and ack[TCP].sport == 80
    assert ack[TCP].seq == 5001 + len(b"in window") and ack[TCP].ack == 1000
    assert ack[Ether].dst == CLIENT_MAC
    assert not sent(result, lambda p: TCP in p and p[IP].dst == SERVER and p[TCP].seq == 9999)
    rebuilt = ack[IP].copy()
    del rebuilt[TCP].chksum
    assert IP(bytes(rebuilt))[TCP].chksum == ack[TCP].chksum


def test_icmp_error_quoting_a_real_connection_passes_and_forged_does_not(result):
    assert len(sent(result, lambda p: ICMP in p and p[IP].id == 7)) == 1, result["output"]
    assert not sent(result, lambda p: ICMP in p and p[IP].id == 8)
    assert result["counters"].get("drop.filter_icmp_no_state") == 1


def test_state_limit_refuses_new_states_but_keeps_established(result):
    udp = sent(result, lambda p: UDP in p and p[UDP].dport == 53)
    assert sorted(p[UDP].sport for p in udp) == [5000, 5001, 5002], result["output"]
    assert result["counters"].get("drop.filter_state_limit") == 1
    assert result["counters"]["states"] == 8
