"""Third-party HL7 v2 clients against `vigil mllp` (crates/stream/tests/service.rs runs it).

Usage: mllp_clients.py HOST PORT

- hl7apy validates every message sent (STRICT, HL7 v2.5.1 and v2.4 ORU_R01) and every
  ACK received (STRICT: structure, data types, field lengths);
- python-hl7's MLLPClient (which reads each ACK with one recv) sends messages one after
  another: every ACK must arrive whole, acknowledge its own MSH-10 and echo the version;
- python-hl7's asyncio hl7.mllp streams send pipelined messages: their ACKs come back
  in order.

Prints one JSON line of what it measured; exits non-zero with the reason on failure.
"""

import asyncio
import json
import statistics
import sys
import time

import hl7
import hl7.client
import hl7.mllp
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message


def oru(control, patient, hr, version="2.5.1"):
    # HL7 v2.3's MSH-9 has no message structure component.
    kind = "ORU^R01" if version == "2.3" else "ORU^R01^ORU_R01"
    text = "\r".join(
        [
            f"MSH|^~\\&|PYGW|ICU|VIGIL|HOSP|20261123101500+0100||{kind}|{control}|P|{version}",
            f"PID|||{patient}^^^HOSP^MR||Doe^Jane",
            "OBR|1||ORD-" + control + "|VITALS^Vital signs^L|||20261123101500+0100",
            f"OBX|1|NM|8867-4^Heart rate^LN||{hr}|/min|||||F|||20261123101500+0100",
        ]
    )
    # hl7apy checks the message is a valid ORU_R01 of its version before it is sent.
    parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True).validate()
    return text


def check_ack(raw, control, code, version):
    if isinstance(raw, bytes):
        if not (raw.startswith(b"\x0b") and raw.endswith(b"\x1c\r")):
            raise AssertionError(f"ACK not whole in one read: {raw!r}")
        raw = raw[1:-2].decode()
    ack = hl7.parse(raw)
    msa = ack.segment("MSA")
    if str(msa[1]) != code or str(msa[2]) != control:
        raise AssertionError(f"expected MSA {code} {control}, got {raw!r}")
    msh = ack.segment("MSH")
    if str(msh[12]) != version:
        raise AssertionError(f"version {version} not echoed: {raw!r}")
    if str(msh[5]) != "PYGW" or str(msh[6]) != "ICU":
        raise AssertionError(f"MSH-5/6 not the sender's MSH-3/4: {raw!r}")
    # hl7apy: the ACK is a valid ACK of that version (structure, types, lengths).
    parsed = parse_message(raw, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    parsed.validate()
    return raw


def sequential(host, port, n):
    times = []
    with hl7.client.MLLPClient(host, port) as client:
        for i in range(n):
            control = f"SEQ{i:04d}"
            message = oru(control, f"PY{i % 7}", 70 + i % 40)
            start = time.perf_counter()
            raw = client.send_message(message)
            times.append(time.perf_counter() - start)
            check_ack(raw, control, "AA", "2.5.1")
        # An old version, and a result Vigil refuses: AE with the reason in ERR.
        raw = client.send_message(oru("OLD0001", "PY1", 80, version="2.4"))
        check_ack(raw, "OLD0001", "AA", "2.4")
        raw = client.send_message(oru("BAD0001", "PY1", 900))
        text = check_ack(raw, "BAD0001", "AE", "2.5.1")
        if "ERR||OBX^1^5|102^Data type error^HL70357|E|||OBX[1]-5: " not in text:
            raise AssertionError(f"no ERR segment with the reason: {text!r}")
    return times


async def pipelined(host, port, n):
    reader, writer = await hl7.mllp.open_hl7_connection(host, port)
    controls = [f"PIPE{i:04d}" for i in range(n)]
    for i, control in enumerate(controls):
        writer.writemessage(hl7.parse(oru(control, f"PZ{i % 3}", 90)))
    await writer.drain()
    for control in controls:
        ack = await asyncio.wait_for(reader.readmessage(), 30)
        check_ack(str(ack), control, "AA", "2.5.1")
    writer.close()
    await writer.wait_closed()


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    times = sequential(host, port, 40)
    asyncio.run(pipelined(host, port, 10))
    print(
        json.dumps(
            {
                "sequential": len(times),
                "median_ms": round(statistics.median(times) * 1000, 2),
                "max_ms": round(max(times) * 1000, 2),
                "pipelined": 10,
            }
        )
    )


if __name__ == "__main__":
    main()
