#!/usr/bin/env bash
# Archive benchmark: C-STORE ingest and study-level C-FIND against the platform, Orthanc and dcmtk storescp,
# all measured in the same run with ../shared/bench (see its README).
#
#   bench/bench_archive.sh            # ingest (ct, tiny × 1 and 4 associations) then C-FIND at 10,000 studies
#   REPS=1 bench/bench_archive.sh     # quicker
#   PARTS=ingest bench/bench_archive.sh    # or PARTS=query (C-FIND and DICOMweb at 10,000 studies)
#
# Environment: BENCH_DATA [/tmp/bench-data]  REPS [3]  TINY [1000] (instances in the small ingest corpus)
#   FIND_STUDIES [10000] (studies indexed for the query part)  PARTS [ingest,query]
#   DICOM_PROCESSES [2] (the platform's RADIOLOGY_DICOM_PROCESSES: one listener process per core)
# Needs: apt-get install dcmtk orthanc orthanc-dicomweb; the project's .venv (make install).
# Prints a table of medians with the ratio to Orthanc; raw records go to $BENCH_DATA/results/archive-*.jsonl.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED_BENCH:-$(cd "$ROOT/../shared/bench" && pwd)}
export BENCH_DATA=${BENCH_DATA:-/tmp/bench-data}
PY="$ROOT/.venv/bin/python"
REPS=${REPS:-3}
TINY=${TINY:-1000}
FIND_STUDIES=${FIND_STUDIES:-10000}
PARTS=${PARTS:-ingest,query}
DICOM_PROCESSES=${DICOM_PROCESSES:-2}
export TCP_NODELAY=1
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$BENCH_DATA/results"
export RESULTS_JSONL="$BENCH_DATA/results/archive-$STAMP.jsonl"

PLATFORM_DIR="$BENCH_DATA/platform"
PLATFORM_PORT=11112
PLATFORM_HTTP=8000
PLATFORM_PID=""

platform_stop() {
  if [[ -n "$PLATFORM_PID" ]] && kill -0 "$PLATFORM_PID" 2>/dev/null; then
    kill -TERM "$PLATFORM_PID"
    for _ in $(seq 60); do kill -0 "$PLATFORM_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$PLATFORM_PID" 2>/dev/null || true
  fi
  PLATFORM_PID=""
}

platform_reset() {  # a fresh, empty platform accepting any calling AE
  platform_stop
  rm -rf "$PLATFORM_DIR"
  mkdir -p "$PLATFORM_DIR"
  export RADIOLOGY_DATA_DIR="$PLATFORM_DIR" RADIOLOGY_DICOM_PORT=$PLATFORM_PORT RADIOLOGY_HTTP_PORT=$PLATFORM_HTTP \
         RADIOLOGY_DICOM_OPEN=1 RADIOLOGY_LOG_LEVEL=WARNING RADIOLOGY_DICOM_PROCESSES=$DICOM_PROCESSES
  (cd "$ROOT" && env -u DATABASE_URL -u REDIS_URL "$PY" manage.py migrate -v0)
  (cd "$ROOT" && exec env -u DATABASE_URL -u REDIS_URL "$PY" manage.py serve > "$PLATFORM_DIR/serve.log" 2>&1) &
  PLATFORM_PID=$!
  for _ in $(seq 120); do
    echoscu -aet BENCHSCU -aec RADIOLOGY 127.0.0.1 $PLATFORM_PORT >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "platform did not start; log:" >&2; tail -20 "$PLATFORM_DIR/serve.log" >&2; exit 1
}

platform_pids() { echo "$PLATFORM_PID $(pgrep -P "$PLATFORM_PID" | tr '\n' ' ')"; }

cleanup() { platform_stop; "$SHARED/orthanc.sh" stop >/dev/null 2>&1 || true; "$SHARED/storescp.sh" stop >/dev/null 2>&1 || true; }
trap cleanup EXIT

CORPUS="$BENCH_DATA/archive-corpus"
if [[ ! -d "$CORPUS/ct" || ! -d "$CORPUS/tiny" ]]; then
  echo "== corpus: 1 CT series of 200 slices (512×512) and $TINY small (64×64) instances"
  "$PY" -W ignore "$SHARED/make_corpus.py" --out "$CORPUS" --profiles ct,tiny --ct-studies 1 --ct-slices 200 --tiny "$TINY"
fi
cat "$CORPUS"/ct/*/*/*.dcm "$CORPUS"/tiny/*/*.dcm > /dev/null  # read from the page cache, as the baseline did

store() {  # LABEL PORT AET DIR PAR PIDS
  sync
  LABEL="$1" SERVER_PIDS="$6" "$SHARED/bench_store.sh" 127.0.0.1 "$2" "$3" "$4" "$5" | grep -v '^RESULT'
}

if [[ ",$PARTS," == *",ingest,"* ]]; then
  echo "== ingest, $REPS repetitions per cell, each from an empty archive"
  "$SHARED/storescp.sh" start >/dev/null
  for rep in $(seq "$REPS"); do
    for profile in ct tiny; do
      for par in 1 4; do
        "$SHARED/storescp.sh" clean >/dev/null
        store "storescp $profile x$par" 11113 BENCH "$CORPUS/$profile" "$par" "$("$SHARED/storescp.sh" pid)"
        "$SHARED/orthanc.sh" reset >/dev/null
        store "orthanc $profile x$par" 4242 ORTHANC "$CORPUS/$profile" "$par" "$("$SHARED/orthanc.sh" pid)"
        platform_reset
        store "platform $profile x$par" $PLATFORM_PORT RADIOLOGY "$CORPUS/$profile" "$par" "$(platform_pids)"
      done
    done
  done
  "$SHARED/storescp.sh" stop >/dev/null
fi

if [[ ",$PARTS," == *",query,"* ]]; then
  FIND_CORPUS="$BENCH_DATA/archive-find-corpus"
  if [[ ! -f "$FIND_CORPUS/manifest.json" ]]; then
    echo "== query corpus: $FIND_STUDIES one-instance studies"
    "$PY" -W ignore "$SHARED/make_corpus.py" --out "$FIND_CORPUS" --profiles tiny --tiny "$FIND_STUDIES"
  fi
  # The CT series of the ingest corpus is the one WADO-RS retrieves and renders.
  read -r CT_STUDY CT_SERIES CT_SOP < <("$PY" -c "import json,sys; c=json.load(open(sys.argv[1]))['query_hints']['ct_series']; print(c['StudyInstanceUID'], c['SeriesInstanceUID'], c['SOPInstanceUID'])" "$CORPUS/manifest.json")
  echo "== loading $FIND_STUDIES studies and the CT series into Orthanc and the platform"
  "$SHARED/orthanc.sh" reset >/dev/null
  store "orthanc query-load x4" 4242 ORTHANC "$FIND_CORPUS/tiny" 4 ""
  store "orthanc query-load x4" 4242 ORTHANC "$CORPUS/ct" 4 ""
  platform_reset
  store "platform query-load x4" $PLATFORM_PORT RADIOLOGY "$FIND_CORPUS/tiny" 4 ""
  store "platform query-load x4" $PLATFORM_PORT RADIOLOGY "$CORPUS/ct" 4 ""
  # DICOMweb needs a credential on the platform: a service account's API token.
  (cd "$ROOT" && echo "bench-$STAMP-password" | env -u DATABASE_URL -u REDIS_URL "$PY" manage.py adduser bench \
     --role administrator --password-stdin >/dev/null)
  TOKEN=$(cd "$ROOT" && env -u DATABASE_URL -u REDIS_URL "$PY" manage.py drf_create_token bench | awk '{print $3}')
  QUERY_TESTS=cfind,qido,wado,wado-client,rendered
  CT_ARGS=(--study-uid "$CT_STUDY" --series-uid "$CT_SERIES" --sop-uid "$CT_SOP")
  "$PY" "$SHARED/bench_query.py" --dimse 127.0.0.1:4242:ORTHANC --dicomweb http://127.0.0.1:8042/dicom-web \
    --tests "$QUERY_TESTS" --manifest "$FIND_CORPUS/manifest.json" "${CT_ARGS[@]}" \
    --label "orthanc query" --json-out "$RESULTS_JSONL" | grep -v '^RESULT' || true
  "$PY" "$SHARED/bench_query.py" --dimse "127.0.0.1:$PLATFORM_PORT:RADIOLOGY" \
    --dicomweb "http://127.0.0.1:$PLATFORM_HTTP/dicomweb" --http-header "Authorization: Token $TOKEN" \
    --tests "$QUERY_TESTS" --manifest "$FIND_CORPUS/manifest.json" "${CT_ARGS[@]}" \
    --label "platform query" --json-out "$RESULTS_JSONL" | grep -v '^RESULT' || true
fi

"$PY" "$ROOT/bench/summarize_archive.py" "$RESULTS_JSONL"
