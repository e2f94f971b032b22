#!/usr/bin/env bash
# The stack, run for real against whatever engine `docker` reaches: build the default profile's
# images (and the trainer's Python layers on the local Python base), start the default profile
# with a fake judge upstream, score a known request through each service (and the gateway, when
# docker-compose.yml has one), scale a service to 2, crash one and watch it come back, stop one
# by hand and watch it stay down, start clip_cider with neither its weights nor a hub (it must say
# why on /readyz and not restart), then `down` (under 15 s, whatever state each service is in).
# One line per step: verdict, seconds, what it saw.
# Exit status 1 when any step failed. Not part of .ci/run: CI has no engine.
#
#   scripts/stack_check.sh                # from anywhere; needs docker (Compose v2), python3, bash 5
#
# Environment:
#   STACK_CHECK_PROJECT   compose project name (default rewardstack-check: never touches a running
#                         `rewardstack` stack)
#   STACK_CHECK_KEEP=1    leave the stack running at the end (default: `down -v`)
#   STACK_CHECK_TRAINER_TARGET  trainer.Dockerfile target to build on the Python base: resolve
#                         (default: the requirements resolve, metadata only) or build (installs
#                         them: several GB of CUDA wheels)
#   STACK_CHECK_BUILD_NETWORK  host (default: builds use the host's network, for engines without
#                         NAT) or default (the engine's own build network)
#   STACK_CHECK_TIMEOUT   seconds to wait for health (default 600)
#   CLIP_TORCH_INDEX_URL  passed to the clip build (docker-compose.yml's default: PyTorch's CPU
#                         index, falling back to PyPI where unreachable)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
HERE=docker/stack-check
PROJECT=${STACK_CHECK_PROJECT:-rewardstack-check}
TIMEOUT=${STACK_CHECK_TIMEOUT:-600}
LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/stack-check.XXXXXX")
FILES=(-f docker-compose.yml -f "$HERE/compose.yml")
SCALED=vqa_accuracy        # scaled to 2 replicas
CRASHED=regex_format       # its process killed; its host port pinned, to show it stays the same
STOPPED=math_equiv         # `docker kill`ed: a manual stop, which no restart policy undoes
OFFLINE=clip_offline       # clip_cider with real weights, an empty cache, a hub that refuses
OFFLINE_CACHE=/tmp/no-weights  # its CLIP_CIDER_CLIP_CACHE_DIR ($HERE/compose.yml)

# A fake key: the judge talks to the fake upstream only. Empty CLIP_CIDER_CLIP_PRETRAINED: seeded
# random weights, no download (compose reads it with `-`, so empty stays empty).
export OPENROUTER_API_KEY=stack-check-not-a-key CLIP_CIDER_CLIP_PRETRAINED=
export STACK_CHECK_TRAINER_TARGET=${STACK_CHECK_TRAINER_TARGET:-resolve}
export "${CRASHED^^}_HOST_PORT=$(python3 "$HERE/probe.py" free-port)" "${SCALED^^}_HOST_PORT="
PINNED=$(printenv "${CRASHED^^}_HOST_PORT")

FAILED=0
STEP=0
compose() { docker compose -p "$PROJECT" "${FILES[@]}" "$@"; }

# Compose's `build` has no --network: an override gives every service that builds (in any
# profile, a gateway included when the compose file has one) the host's network.
host_network_override() {
  local out="$LOG_DIR/build-host-network.yml"
  compose --profile '*' config --format json | python3 -c 'import json, sys
print("services:")
for name, service in sorted(json.load(sys.stdin)["services"].items()):
    if "build" in service:
        print(f"  {name}: {{build: {{network: host}}}}")' > "$out" || return 1
  echo "$out"
}
if [ "${STACK_CHECK_BUILD_NETWORK:-host}" = host ]; then
  override=$(host_network_override) || { echo "docker compose config failed"; exit 1; }
  FILES+=(-f "$override")
fi

# step NAME COMMAND...: run it with its output in $LOG_DIR, print one line; the line's note is
# the command's last output line.
step() {
  local name=$1; shift
  local log; STEP=$((STEP + 1)); log=$(printf '%s/%02d-%s.log' "$LOG_DIR" "$STEP" "$name")
  local t0=$EPOCHREALTIME
  "$@" > "$log" 2>&1
  local rc=$? elapsed; elapsed=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {print b - a}')
  local note; note=$(grep -v '^\s*$' "$log" | tail -1 | cut -c1-160)
  if [ $rc -eq 0 ]; then
    printf 'PASS  %-28s %7.1fs  %s\n' "$name" "$elapsed" "$note"
  else
    FAILED=1
    printf 'FAIL  %-28s %7.1fs  %s (log: %s)\n' "$name" "$elapsed" "$note" "$log"
  fi
  return $rc
}

skip() { printf 'SKIP  %-28s %7s   %s\n' "$1" "-" "$2"; }

target_port() {  # the container port SERVICE publishes (its first `ports` entry), default 8000
  compose config --format json | python3 -c 'import json, sys
ports = json.load(sys.stdin)["services"][sys.argv[1]].get("ports") or [{"target": 8000}]
print(ports[0]["target"])' "$1"
}

url_of() {  # url_of SERVICE [INDEX]: http://127.0.0.1:PORT of replica INDEX
  local hostport; hostport=$(compose port --index "${2:-1}" "$1" "$(target_port "$1")" 2>/dev/null) || return 1
  [ -n "$hostport" ] || return 1
  echo "http://$hostport"
}

engine() {
  local engine compose
  engine=$(docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}}), client {{.Client.Version}}') \
    && compose=$(docker compose version --short) && echo "$engine, compose $compose"
}

build_images() {
  # One service per image: services sharing an image (the four slim ones) would each build and
  # tag it again, leaving dangling copies.
  local services
  services=$(compose config --format json | python3 -c 'import json, sys
seen = {}
for name, service in sorted(json.load(sys.stdin)["services"].items()):
    if "build" in service:
        seen.setdefault(service.get("image", name), name)
print(" ".join(seen.values()))') || return 1
  # shellcheck disable=SC2086  # one word per service
  compose build $services || return 1
  local line=""
  for image in $(compose config --images | sort -u); do
    line+="$image $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'); "
  done
  echo "$line"
}

build_trainer() {
  local image="rewardstack-trainer:check-$STACK_CHECK_TRAINER_TARGET" versions=""
  compose --profile train build trainer || return 1
  if [ "$STACK_CHECK_TRAINER_TARGET" = build ]; then  # installed: the stack imports, on a CPU
    versions=$(docker run --rm --entrypoint python "$image" -c 'import importlib.metadata as m
import torch, transformers, trl, peft, vllm, deepspeed, trainer
print(" ".join(f"{d} {m.version(d)}" for d in ("torch", "transformers", "trl", "vllm", "deepspeed")))' \
      | tail -1) || return 1
  fi
  echo "target $STACK_CHECK_TRAINER_TARGET on python:3.11-slim-bookworm:" \
    "$(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}') $versions"
}

health() { compose ps -a --format '{{.Service}}:{{.Health}}' | sort | tr '\n' ' '; }

up() {
  if ! compose up -d --wait --wait-timeout "$TIMEOUT"; then
    compose ps -a; compose logs --tail 20
    echo "not all healthy within ${TIMEOUT}s: $(health)"; return 1
  fi
  health
}

score() {  # score SERVICE [INDEX]
  local url; url=$(url_of "$1" "${2:-1}") || { echo "$1 publishes no port"; return 1; }
  python3 "$HERE/probe.py" score "$1" "$url"
}

scale() {
  compose up -d --wait --wait-timeout "$TIMEOUT" --scale "$SCALED=2" || return 1
  local a b; a=$(url_of "$SCALED" 1) && b=$(url_of "$SCALED" 2) || { echo "no second replica"; return 1; }
  [ "$a" != "$b" ] || { echo "both replicas on $a"; return 1; }
  python3 "$HERE/probe.py" score "$SCALED" "$a" && python3 "$HERE/probe.py" score "$SCALED" "$b" \
    && echo "replica 1 at $a and replica 2 at $b answer"
}

container_of() { compose ps -q "$1" | head -1; }

wait_healthy() {  # wait_healthy CONTAINER: until health is healthy, or TIMEOUT
  local deadline=$((SECONDS + TIMEOUT))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null)" = healthy ] && return 0
    sleep 1
  done
  return 1
}

crash() {  # kill the server process inside the container (not `docker kill`): a crash
  local id; id=$(container_of "$CRASHED")
  local before; before=$(docker inspect -f '{{.RestartCount}}' "$id")
  # PID 1 is tini (init: true); killing every other process ends the server as a crash would.
  docker exec "$id" python -c "import os, signal
for p in os.listdir('/proc'):
    if p.isdigit() and int(p) not in (1, os.getpid()):
        try: os.kill(int(p), signal.SIGKILL)
        except OSError: pass" || true
  local deadline=$((SECONDS + 60))
  until [ "$(docker inspect -f '{{.RestartCount}}' "$id")" -gt "$before" ]; do
    [ $SECONDS -lt $deadline ] || { echo "no restart within 60 s"; return 1; }
    sleep 0.5
  done
  wait_healthy "$id" || { echo "restarted but not healthy"; return 1; }
  local port; port=$(url_of "$CRASHED") || return 1
  [ "$port" = "http://127.0.0.1:$PINNED" ] || { echo "host port moved: $port, pinned $PINNED"; return 1; }
  python3 "$HERE/probe.py" score "$CRASHED" "$port" \
    && echo "restarted by its policy (restarts: $(docker inspect -f '{{.RestartCount}}' "$id")), same host port $PINNED"
}

manual_stop() {  # `docker kill` is a manual stop: the container stays down until `up` again
  local id; id=$(container_of "$STOPPED")
  docker kill "$id" > /dev/null || return 1
  sleep 5
  local state; state=$(docker inspect -f '{{.State.Status}}' "$id")
  [ "$state" = exited ] || { echo "after docker kill: $state, expected exited"; return 1; }
  compose up -d --wait --wait-timeout "$TIMEOUT" "$STOPPED" || return 1
  score "$STOPPED" > /dev/null && echo "docker kill: stayed exited 5 s; compose up -d brought it back"
}

offline_clip() {  # weights neither cached nor downloadable: a reason on /readyz, no restart loop
  local hostport id restarts state
  compose --profile offline-check up -d --no-deps "$OFFLINE" || return 1
  hostport=$(compose --profile offline-check port "$OFFLINE" 8000) && [ -n "$hostport" ] \
    || { echo "$OFFLINE publishes no port"; return 1; }
  python3 "$HERE/probe.py" offline "http://$hostport" "$OFFLINE_CACHE" || return 1
  id=$(compose --profile offline-check ps -q "$OFFLINE" | head -1)
  sleep 30  # a crash loop would show in the restart count by now
  restarts=$(docker inspect -f '{{.RestartCount}}' "$id") && state=$(docker inspect -f '{{.State.Status}}' "$id")
  [ "$restarts" = 0 ] && [ "$state" = running ] \
    || { echo "30 s later: $state after $restarts restarts, expected running, 0"; return 1; }
  python3 "$HERE/probe.py" offline "http://$hostport" "$OFFLINE_CACHE" > /dev/null \
    || { echo "the reason left /readyz"; return 1; }
  echo "up and not ready after 30 s, 0 restarts; /readyz names the tag, $OFFLINE_CACHE and the fixes"
}

gateway() {
  local url; url=$(url_of gateway) || { echo "gateway publishes no port on the host"; return 1; }
  python3 "$HERE/probe.py" gateway "$url"
}

down() {  # every service in whatever state it is in (the offline clip not ready): < 15 s
  local t0=$EPOCHREALTIME took
  compose --profile train --profile offline-check down -v --remove-orphans --timeout 30 || return 1
  took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
  awk -v t="$took" 'BEGIN {exit !(t < 15)}' \
    || { echo "down took $took s: something ignored SIGTERM (15 s at most)"; return 1; }
  echo "project $PROJECT removed in $took s"
}

cleanup() {
  if [ "${STACK_CHECK_KEEP:-0}" = 1 ]; then echo "kept running: docker compose -p $PROJECT ${FILES[*]} down -v"
  else step down down || true; fi
}

echo "stack check: project $PROJECT, logs in $LOG_DIR"
start_all=$SECONDS
step engine engine || exit 1
step build build_images || exit 1
step trainer-python-layer build_trainer
trap cleanup EXIT
step up up || exit 1
for service in regex_format math_equiv vqa_accuracy clip_cider llm_judge; do
  step "score $service" score "$service"
done
if compose config --services | grep -qx gateway; then
  step "score gateway" gateway
else
  skip "score gateway" "docker-compose.yml defines no gateway service"
fi
step "scale $SCALED=2" scale
step "crash $CRASHED" crash
step "docker kill $STOPPED" manual_stop
step "clip offline" offline_clip
trap - EXIT
cleanup
echo "stack check: $([ $FAILED = 0 ] && echo PASS || echo FAIL) in $((SECONDS - start_all)) s"
exit $FAILED
