#!/usr/bin/env python3
"""ORM^O01 messages per second into `manage.py serve` over ONE MLLP connection, each message waiting for its ACK
(original-mode acknowledgement, as an EHR's interface engine sends), on a fresh data directory with SQLite (WAL,
synchronous=FULL) unless DATABASE_URL is set.

There is no HL7 peer on this machine to compare with (no Mirth or other engine packaged), so the figure is
absolute: messages/s, median of --runs, the per-message round trip p50/p95, and the CPU time `serve` spent
per message (all its threads, from /proc), which says more than the rate on a machine shared with other work.

  .venv/bin/python bench/bench_orm.py [--messages 2000] [--runs 3] [--patients 200] [--unscheduled]

Each message is a new order (ORC-1 NW) for one of the catalogue's procedures and one of the registered
patients, with a start time (so it is scheduled as well), a referring physician and a reason: the full path of
docs/ris.md's "HL7 v2" section (`--unscheduled`: without the start time, so requested only). Every ACK must be AA;
the run fails otherwise.
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from hl7.client import MLLPClient

ROOT = Path(__file__).resolve().parent.parent
PROCEDURES = [("BCTHEAD", "CT HEAD", "CT"), ("BMRKNEE", "MR KNEE", "MR"), ("BCRCHEST", "CR CHEST", "CR")]

SETUP = """
from radiology.models import Patient
from worklist.models import ProcedureType
for code, name, modality in {procedures!r}:
    ProcedureType.objects.get_or_create(code=code, defaults={{"name": name, "modality": modality}})
Patient.objects.bulk_create([Patient(mrn=f"BENCH{{n:05d}}", issuer="GENHOSP", family_name=f"Patient{{n}}",
                                     given_name="Bench") for n in range({patients})], ignore_conflicts=True)
"""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def manage(env, *args):
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True,
                   text=True, timeout=300)


class Platform:
    def __init__(self, data_dir):
        self.env = {**{key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"},
                    "RADIOLOGY_DATA_DIR": str(data_dir), "RADIOLOGY_HTTP_PORT": str(free_port()),
                    "RADIOLOGY_DICOM_PORT": str(free_port()), "RADIOLOGY_HL7_PORT": str(free_port())}
        self.hl7_port = int(self.env["RADIOLOGY_HL7_PORT"])
        self.log_path = Path(data_dir) / "serve.log"
        self.process = None

    def start(self, patients):
        manage(self.env, "migrate", "--noinput")
        manage(self.env, "shell", "-c", SETUP.format(procedures=PROCEDURES, patients=patients))
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen([sys.executable, "manage.py", "serve"], cwd=ROOT, env=self.env,
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{self.env['RADIOLOGY_HTTP_PORT']}/healthz"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"serve exited:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise SystemExit(f"serve did not become healthy:\n{self.log_path.read_text()}")

    def cpu_seconds(self):
        """User + system CPU time of the serve process so far (all its threads), from /proc."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def orm_message(run, number, patients, scheduled=True):
    code, _, modality = PROCEDURES[number % len(PROCEDURES)]
    mrn = f"BENCH{number % patients:05d}"
    placer = f"R{run}P{number:06d}"
    day, minute = divmod(number, 600)
    start = f"202701{1 + day % 28:02d}{7 + minute // 60:02d}{minute % 60:02d}00+0000"
    return "\r".join([
        f"MSH|^~\\&|BENCHEHR|GENHOSP|RADIOLOGY|RADDEPT|20261128080000||ORM^O01^ORM_O01|R{run}M{number:06d}|P|2.5.1",
        f"PID|1||{mrn}^^^GENHOSP^MR||Patient{number % patients}^Bench||19700101|F",
        "PV1|1|O||||||X123^House^Gregory",
        f"ORC|NW|{placer}|||||||20261128080000|||||||",
        f"TQ1|1||||||{start if scheduled else ''}||R",
        f"OBR|1|{placer}||{code}^{code}^99LOCAL||||||||||||||||||||{modality}|||||||routine follow-up",
    ])


def send_all(port, run, count, patients, scheduled=True):
    """Seconds for `count` messages on one connection, and each message's round trip in ms."""
    messages = [orm_message(run, number, patients, scheduled).encode() for number in range(count)]
    round_trips = []
    with MLLPClient("127.0.0.1", port) as client:
        client.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        for message in messages:
            sent = time.perf_counter()
            reply = client.send_message(message)
            while not reply.endswith(b"\x1c\r"):
                more = client.socket.recv(4096)
                if not more:
                    raise ConnectionError("serve closed the HL7 connection")
                reply += more
            round_trips.append((time.perf_counter() - sent) * 1000)
            if b"MSA|AA|" not in reply:
                raise SystemExit(f"not accepted: {reply!r}")
        elapsed = time.perf_counter() - started
    return elapsed, round_trips


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--unscheduled", action="store_true",
                        help="orders without a start time (requested, not scheduled): fewer writes per message")
    args = parser.parse_args()
    scheduled = not args.unscheduled

    with tempfile.TemporaryDirectory(prefix="bench-orm-") as data_dir:
        platform = Platform(data_dir)
        platform.start(args.patients)
        try:
            send_all(platform.hl7_port, 0, 50, args.patients)  # warm-up: imports, first connections
            results = []
            for run in range(1, args.runs + 1):
                cpu_before = platform.cpu_seconds()
                elapsed, round_trips = send_all(platform.hl7_port, run, args.messages, args.patients, scheduled)
                cpu = platform.cpu_seconds() - cpu_before
                round_trips.sort()
                record = {"bench": "orm", "run": run, "messages": args.messages, "scheduled": scheduled,
                          "messages_per_s": round(args.messages / elapsed, 1),
                          "serve_cpu_ms_per_message": round(cpu * 1000 / args.messages, 2),
                          "p50_ms": round(statistics.median(round_trips), 2),
                          "p95_ms": round(round_trips[int(0.95 * len(round_trips)) - 1], 2)}
                print(json.dumps(record), flush=True)
                results.append(record)
        except (ConnectionError, SystemExit):
            print(platform.log_path.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            platform.stop()
    median = statistics.median(record["messages_per_s"] for record in results)
    print(f"\nORM^O01 NW ({'scheduled' if scheduled else 'requested'}) on one MLLP connection, "
          f"{args.messages} messages × {args.runs} runs: "
          f"median {median:.1f} messages/s (target ≥ 200; no HL7 peer to compare with on this machine)")


if __name__ == "__main__":
    main()
