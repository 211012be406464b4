#!/usr/bin/env python3
"""Modality Worklist C-FIND latency with 10,000 scheduled procedure steps: the platform's listener beside
dcmtk's file-based worklist SCP (wlmscpfs) holding the same 10,000 steps, in one run.

    .venv/bin/python bench/bench_mwl.py [--steps 10000] [--queries 100] [--findscu 30] [--keep]

What it does:
- makes a temporary data dir, migrates a fresh SQLite database there, and writes the steps with bulk_create
  (not the order services: those audit and announce every order, which takes minutes for 10,000 and measures
  nothing the worklist does). Each order is SCHEDULED with one SCHEDULED step on one of 12 stations, at 20
  minute slots from 07:00 local time, over 31 days centred on today; 6,000 patients with generated names.
- writes the same steps as .wl files for wlmscpfs (dcmtk's worklist SCP reads its folder on every query);
- starts `manage.py dicom_listener` (the listener `serve` runs, with the worklist's services) and wlmscpfs, each
  in its own process, and measures two queries a modality sends, with the return keys a modality asks for:
    station: ScheduledStationAETitle = one of the stations, ScheduledProcedureStepStartDate = today;
    name:    PatientName = the first four letters of a patient's family name and `*`;
  with pynetdicom (TCP_NODELAY on the SCU socket), "query" on one open association and "total" with a new
  association per query (associate, C-FIND, release: what a modality does), and with dcmtk's `findscu -W`
  (TCP_NODELAY=1; its time includes starting the process).
Prints one JSON line per measurement and a Markdown table for docs/performance.md.
"""
import argparse
import datetime
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STATIONS = [(f"{modality}_ROOM{number}", modality) for number, modality in enumerate(
    ["CT", "CT", "CT", "MR", "MR", "MR", "CR", "CR", "US", "US", "MG", "NM"], start=1)]
SYLLABLES = ["ba", "ker", "mo", "ri", "sen", "tal", "ve", "lin", "do", "sa", "ni", "gor", "pe", "hu", "za",
             "mar", "ko", "lu", "fi", "ber", "an", "tos", "wi", "el"]
GIVEN_NAMES = ["Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hugo", "Ida", "Jonas", "Karin", "Leo",
               "Maria", "Nils", "Olga", "Paul", "Rosa", "Sven", "Tina", "Uwe"]
STEP_KEYS = ["Modality", "ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
             "ScheduledProcedureStepStartTime", "ScheduledPerformingPhysicianName",
             "ScheduledProcedureStepDescription", "ScheduledProcedureStepID", "ScheduledProcedureStepLocation"]
TOP_KEYS = ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyInstanceUID",
            "RequestedProcedureID", "RequestedProcedureDescription", "RequestedProcedurePriority",
            "ReferringPhysicianName"]
PLATFORM_AET, PEER_AET, SCU_AET = "RADIOLOGY", "WLMSCP", "CT_ROOM1"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, process, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout} s")


# ---------------------------------------------------------------------------------------------------------
# The data

def family_names(rng, count):
    names = set()
    while len(names) < count:
        names.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize())
    return sorted(names)


def build_steps(count, rng):
    """Write `count` scheduled steps with bulk_create; returns the steps' rows as dicts (for the .wl files)."""
    from django.utils import timezone
    from pydicom.uid import generate_uid

    from radiology.models import Patient
    from worklist.choices import OrderStatus, Priority, StepStatus
    from worklist.models import Order, ProcedureType, ScheduledProcedureStep, Station

    stations = [Station.objects.create(name=f"{modality} scanner {ae_title[-1]}", ae_title=ae_title,
                                       modality=modality, location=f"Room {ae_title.rsplit('M', 1)[-1]}")
                for ae_title, modality in STATIONS]
    procedures = {modality: ProcedureType.objects.create(code=f"{modality}01", name=f"{modality} standard",
                                                         modality=modality)
                  for modality in sorted({modality for _, modality in STATIONS})}
    families = family_names(rng, 1500)
    patients = Patient.objects.bulk_create([
        Patient(mrn=f"MRN{number:07d}", family_name=rng.choice(families), given_name=rng.choice(GIVEN_NAMES),
                birth_date=datetime.date(1940, 1, 1) + datetime.timedelta(days=rng.randint(0, 30000)),
                sex=rng.choice("MF")) for number in range(6000)], batch_size=1000)
    today = timezone.localdate()
    slots = [(day, slot) for day in range(-15, 16) for slot in range(40)]  # 07:00-20:20 every 20 minutes
    rng.shuffle(slots)
    placements = [(station, day, slot) for station in stations for day, slot in slots]
    rng.shuffle(placements)
    placements = placements[:count]
    now = timezone.now()
    priorities = [Priority.ROUTINE] * 8 + [Priority.URGENT, Priority.STAT]
    orders = Order.objects.bulk_create([
        Order(accession_number=f"B{number:08d}", filler_order_number=f"B{number:08d}", patient=rng.choice(patients),
              procedure=procedures[station.modality], requested_procedure_id=f"RP{number:08d}",
              priority=rng.choice(priorities), study_instance_uid=generate_uid(), status=OrderStatus.SCHEDULED,
              status_changed_at=now, referring_physician_name="House^Gregory")
        for number, (station, _, _) in enumerate(placements)], batch_size=1000)
    steps = []
    for order, (station, day, slot) in zip(orders, placements):
        start = timezone.make_aware(datetime.datetime.combine(
            today + datetime.timedelta(days=day), datetime.time(7)) + datetime.timedelta(minutes=20 * slot))
        steps.append(ScheduledProcedureStep(
            order=order, step_id=f"S{order.accession_number[1:]}", station=station, station_ae_title=station.ae_title,
            modality=station.modality, description=order.procedure.name, start=start,
            end=start + datetime.timedelta(minutes=20), status=StepStatus.SCHEDULED))
    ScheduledProcedureStep.objects.bulk_create(steps, batch_size=1000)
    return [{"order": order, "step": step} for order, step in zip(orders, steps)], patients


def write_worklist_files(rows, folder):
    """The same steps as dcmtk worklist files (one .wl per step) in folder/WLMSCP, as wlmscpfs wants them."""
    from django.utils import timezone
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from worklist.choices import DICOM_PRIORITY

    ae_folder = folder / PEER_AET
    ae_folder.mkdir(parents=True)
    (ae_folder / "lockfile").touch()
    for number, row in enumerate(rows):
        order, step = row["order"], row["step"]
        start = timezone.localtime(step.start)
        dataset = Dataset()
        dataset.SpecificCharacterSet = "ISO_IR 100"
        dataset.AccessionNumber = order.accession_number
        dataset.ReferringPhysicianName = order.referring_physician_name
        dataset.PatientName = order.patient.dicom_name
        dataset.PatientID = order.patient.mrn
        dataset.PatientBirthDate = order.patient.birth_date.strftime("%Y%m%d")
        dataset.PatientSex = order.patient.sex
        dataset.StudyInstanceUID = order.study_instance_uid
        dataset.RequestedProcedureID = order.requested_procedure_id
        dataset.RequestedProcedureDescription = order.procedure.name
        dataset.RequestedProcedurePriority = DICOM_PRIORITY[order.priority]
        item = Dataset()
        item.Modality = step.modality
        item.ScheduledStationAETitle = step.station_ae_title
        item.ScheduledProcedureStepStartDate = start.strftime("%Y%m%d")
        item.ScheduledProcedureStepStartTime = start.strftime("%H%M%S")
        item.ScheduledPerformingPhysicianName = ""
        item.ScheduledProcedureStepDescription = step.description
        item.ScheduledProcedureStepID = step.step_id
        item.ScheduledProcedureStepLocation = step.station.location
        dataset.ScheduledProcedureStepSequence = [item]
        dataset.file_meta = FileMetaDataset()
        dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        dataset.file_meta.MediaStorageSOPClassUID = "1.2.276.0.7230010.3.1.0.1"  # dcmtk's private "worklist"
        dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dataset.save_as(ae_folder / f"{number:05d}.wl", enforce_file_format=True)


# ---------------------------------------------------------------------------------------------------------
# The queries

def identifier(station=None, date=None, name=None):
    from pydicom.dataset import Dataset

    dataset = Dataset()
    for keyword in TOP_KEYS:
        setattr(dataset, keyword, "")
    if name:
        dataset.PatientName = name
    item = Dataset()
    for keyword in STEP_KEYS:
        setattr(item, keyword, "")
    if station:
        item.ScheduledStationAETitle = station
    if date:
        item.ScheduledProcedureStepStartDate = date
    dataset.ScheduledProcedureStepSequence = [item]
    return dataset


def application_entity():
    from pynetdicom import AE
    from pynetdicom.sop_class import ModalityWorklistInformationFind

    ae = AE(ae_title=SCU_AET)
    ae.add_requested_context(ModalityWorklistInformationFind)
    return ae


def _no_delay(event):
    event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def associate(ae, port, called_ae):
    from pynetdicom import evt

    association = ae.associate("127.0.0.1", port, ae_title=called_ae, evt_handlers=[(evt.EVT_CONN_OPEN, _no_delay)])
    if not association.is_established:
        raise SystemExit(f"association to {called_ae} on port {port} refused")
    return association


def find(association, query):
    """The number of matches; raises on a failure status."""
    from pynetdicom.sop_class import ModalityWorklistInformationFind

    matches = 0
    for status, _ in association.send_c_find(query, ModalityWorklistInformationFind):
        if status.Status == 0xFF00:
            matches += 1
        elif status.Status != 0x0000:
            raise SystemExit(f"C-FIND failed with status 0x{status.Status:04X}")
    return matches


def cpu_seconds(pid):
    """User + system CPU time of a process so far (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_pynetdicom(target, port, called_ae, queries, server_pid=None):
    """p50/p95 per query kind and mode; with `server_pid`, also the server's CPU time per query (a figure that
    other work on a shared machine disturbs less than wall-clock latency), and this client's (pynetdicom's SCU:
    decoding the responses and its polling threads), which shares the machine's cores with the server."""
    ae = application_entity()
    results = []
    association = associate(ae, port, called_ae)
    find(association, queries[0][1])  # warm-up: the first query of a process pays for imports and caches
    for mode in ("query", "total"):
        for kind in ("station", "name"):
            timings, matched = [], []
            cpu_before, client_before = cpu_seconds(server_pid), time.process_time()
            for query_kind, query in queries:
                if query_kind != kind:
                    continue
                started = time.perf_counter()
                if mode == "total":
                    fresh = associate(ae, port, called_ae)
                    matched.append(find(fresh, query))
                    fresh.release()
                else:
                    matched.append(find(association, query))
                timings.append((time.perf_counter() - started) * 1000)
            cpu_after, client_after = cpu_seconds(server_pid), time.process_time()
            cpu_ms = (cpu_after - cpu_before) * 1000 / len(timings) if cpu_before is not None else None
            client_ms = (client_after - client_before) * 1000 / len(timings)
            results.append(summary(target, "pynetdicom", f"{kind}, {mode}", timings, matched, cpu_ms, client_ms))
    association.release()
    return results


def measure_findscu(target, port, called_ae, queries, count):
    env = {**os.environ, "TCP_NODELAY": "1"}
    results = []
    for kind in ("station", "name"):
        timings, matched = [], []
        for query_kind, query in [item for item in queries if item[0] == kind][:count]:
            item = query.ScheduledProcedureStepSequence[0]
            keys = [f"PatientName={query.PatientName}", "AccessionNumber", "PatientID", "StudyInstanceUID",
                    f"(0040,0100)[0].ScheduledStationAETitle={item.ScheduledStationAETitle}",
                    f"(0040,0100)[0].ScheduledProcedureStepStartDate={item.ScheduledProcedureStepStartDate}",
                    "(0040,0100)[0].Modality", "(0040,0100)[0].ScheduledProcedureStepStartTime"]
            arguments = ["findscu", "-v", "-W", "-aet", SCU_AET, "-aec", called_ae]
            for key in keys:
                arguments += ["-k", key]
            started = time.perf_counter()
            result = subprocess.run([*arguments, "127.0.0.1", str(port)], env=env, capture_output=True, text=True,
                                    timeout=120)
            timings.append((time.perf_counter() - started) * 1000)
            if result.returncode != 0:
                raise SystemExit(f"findscu failed: {result.stderr[-500:]}")
            matched.append((result.stdout + result.stderr).count("(Pending)"))
        results.append(summary(target, "findscu -W", f"{kind}, total", timings, matched))
    return results


def summary(target, client, query, timings, matched, server_cpu_ms=None, client_cpu_ms=None):
    ordered = sorted(timings)
    record = {"bench": "mwl", "target": target, "client": client, "query": query, "runs": len(timings),
              "p50_ms": round(statistics.median(ordered), 1),
              "p95_ms": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 1),
              "mean_matches": round(statistics.mean(matched), 1),
              "server_cpu_ms_per_query": round(server_cpu_ms, 1) if server_cpu_ms is not None else None,
              "client_cpu_ms_per_query": round(client_cpu_ms, 1) if client_cpu_ms is not None else None,
              "load_average": round(os.getloadavg()[0], 2)}
    print(json.dumps(record), flush=True)
    return record


def make_queries(rng, patients, count):
    from django.utils import timezone

    today = timezone.localdate().strftime("%Y%m%d")
    queries = []
    for number in range(count):
        queries.append(("station", identifier(station=STATIONS[number % len(STATIONS)][0], date=today)))
        queries.append(("name", identifier(name=rng.choice(patients).family_name[:4].upper() + "*")))
    return queries


# ---------------------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=100, help="of each kind (station, name), per mode")
    parser.add_argument("--findscu", type=int, default=30, help="findscu -W runs of each kind; 0 to skip")
    parser.add_argument("--peer-queries", type=int, default=20,
                        help="of each kind per mode against wlmscpfs, which reads every file for each query")
    parser.add_argument("--no-peer", action="store_true", help="skip dcmtk's wlmscpfs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="bench-mwl-"))
    port, peer_port = free_port(), free_port()
    env_overrides = {"RADIOLOGY_DATA_DIR": str(data_dir), "RADIOLOGY_DICOM_PORT": str(port),
                     "RADIOLOGY_DICOM_AET": PLATFORM_AET, "RADIOLOGY_DICOM_OPEN": "0",
                     "DJANGO_SETTINGS_MODULE": "radiology.settings"}
    for variable in ("DATABASE_URL", "RADIOLOGY_STORAGE", "REDIS_URL"):
        os.environ.pop(variable, None)
    os.environ.update(env_overrides)
    processes = []
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        rng = random.Random(20261128)
        started = time.perf_counter()
        rows, patients = build_steps(args.steps, rng)
        print(f"# {len(rows)} scheduled steps written in {time.perf_counter() - started:.1f} s", flush=True)
        if not args.no_peer:
            write_worklist_files(rows, data_dir / "wlm")
        from django.db import connection

        connection.close()

        listener = subprocess.Popen([sys.executable, "manage.py", "dicom_listener"], cwd=ROOT,
                                    env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(listener)
        wait_for_port(port, listener)
        if not args.no_peer:
            peer = subprocess.Popen(["wlmscpfs", "-dfp", str(data_dir / "wlm"),
                                     str(peer_port)], env={**os.environ, "TCP_NODELAY": "1"},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            processes.append(peer)
            wait_for_port(peer_port, peer)

        queries = make_queries(rng, patients, args.queries)
        results = measure_pynetdicom("platform", port, PLATFORM_AET, queries, server_pid=listener.pid)
        if not args.no_peer:
            results += measure_pynetdicom("wlmscpfs", peer_port, PEER_AET, queries[:2 * args.peer_queries])
        if args.findscu:
            results += measure_findscu("platform", port, PLATFORM_AET, queries, args.findscu)
            if not args.no_peer:
                results += measure_findscu("wlmscpfs", peer_port, PEER_AET, queries,
                                           min(args.findscu, args.peer_queries))
        print_table(results)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if args.keep:
            print(f"# data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def print_table(results):
    by_row = {}
    for record in results:
        by_row.setdefault((record["client"], record["query"]), {})[record["target"]] = record
    print("\n| client | query | matches | wlmscpfs p50 ms | platform p50 ms | platform p95 ms | platform ÷ wlmscpfs "
          "| platform CPU ms/query | client CPU ms/query |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for (client, query), targets in by_row.items():
        platform, peer = targets.get("platform"), targets.get("wlmscpfs")
        ratio = f"{platform['p50_ms'] / peer['p50_ms']:.2f}" if platform and peer and peer["p50_ms"] else "–"
        print(f"| {client} | {query} | {platform['mean_matches']} | {peer['p50_ms'] if peer else '–'} | "
              f"**{platform['p50_ms']}** | {platform['p95_ms']} | {ratio} | "
              f"{_or_dash(platform['server_cpu_ms_per_query'])} | {_or_dash(platform['client_cpu_ms_per_query'])} |")


def _or_dash(value):
    return "–" if value is None else value


if __name__ == "__main__":
    main()
