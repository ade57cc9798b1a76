"""The container image and compose.yaml: `make image` builds the Dockerfile with podman or docker,
and the container runs as an operator would run it.

The image test builds with `make image`, starts the container (page + REST, its default) with a
named volume, waits until its HEALTHCHECK says healthy, answers a spoken Korean turn (espeak-ng)
over REST, checks the app runs as uid 1000 and /metrics counted the turn, restarts the container
and reads the conversation back from the volume. It is skipped, saying why, where neither podman
nor docker can run.

On machines like the test machine (no registry, no systemd, hybrid cgroups) podman is pointed at
deploy/containers.conf (runc, cgroupfs, no default ulimits) through CONTAINERS_CONF, the
debian:bookworm-slim base is made with debootstrap when absent, the build runs with --pull=never,
and the machine's CA bundle is the build's `extra-ca` secret. None of this is in the Dockerfile.

MongoDB's image cannot be pulled here, so compose.yaml's MongoDB service (and nginx) is checked
only as configuration (`podman-compose config` / `docker compose config`), never run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import espeak_wav
from tests.live_server import free_port
from voiceqna.config import PROJECT_ROOT

BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
IMAGE = "localhost/voiceqna:test"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CONTAINERS_CONF = PROJECT_ROOT / "deploy" / "containers.conf"
HEALTHY_WITHIN_S = 300.0


def engine_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))  # read by podman only
    return env


def runs(command: list[str]) -> bool:
    if shutil.which(command[0]) is None:
        return False
    try:
        return subprocess.run(command, env=engine_env(), capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def container_engine() -> str:
    """docker or podman, whichever runs here; skips the test, saying why, when neither does."""
    for engine in ("docker", "podman"):
        if runs([engine, "info"]):
            return engine
    pytest.skip("neither docker nor podman can run here (`make test` installs podman and runc from Debian)")


def sh(engine: str, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([engine, *args], env=engine_env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{engine} {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def ensure_base_image(engine: str, tmp_path: Path) -> None:
    """Where no registry can be reached, make debian:bookworm-slim from Debian's own packages."""
    if engine != "podman" or sh(engine, "image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return
    if shutil.which("debootstrap") is None:
        pytest.fail(f"{BASE_IMAGE} is not here and debootstrap is missing: `make test` installs it (packages-dev.txt)")
    rootfs = tmp_path / "rootfs"
    subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs)], check=True,
                   capture_output=True, timeout=1800)
    (rootfs / "etc/apt/sources.list").write_text(
        "deb http://deb.debian.org/debian bookworm main\n"
        "deb http://deb.debian.org/debian bookworm-updates main\n"
        "deb http://deb.debian.org/debian-security bookworm-security main\n")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run([engine, "import", "-", BASE_IMAGE], stdin=tar.stdout, env=engine_env(), check=True,
                   capture_output=True, timeout=600)
    tar.wait()


def build_image(engine: str) -> None:
    command = ["make", "image", f"IMAGE={IMAGE}", f"CONTAINER_ENGINE={engine}"]
    if CA_BUNDLE.is_file():
        command.append(f"EXTRA_CA={CA_BUNDLE}")
    if engine == "podman":
        command.append("BUILD_FLAGS=--pull=never")
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=engine_env(), capture_output=True, text=True,
                            timeout=3600)
    assert result.returncode == 0, f"make image failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def wait_healthy(engine: str, name: str) -> None:
    """Until the image's HEALTHCHECK passes. podman runs it on request here (no systemd timer)."""
    deadline = time.monotonic() + HEALTHY_WITHIN_S
    while time.monotonic() < deadline:
        if engine == "podman":
            sh(engine, "healthcheck", "run", name, check=False, timeout=30)
        status = sh(engine, "inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
        if status == "healthy":
            return
        if sh(engine, "inspect", "--format", "{{.State.Running}}", name).stdout.strip() != "true":
            break
        time.sleep(3)
    logs = sh(engine, "logs", name, check=False).stdout + sh(engine, "logs", name, check=False).stderr
    raise AssertionError(f"the container did not become healthy:\n{logs[-4000:]}")


def audio_turns(base_url: str) -> float:
    text = requests.get(f"{base_url}/api/metrics", timeout=30).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "voiceqna_turns_total" and s.labels == {"route": "rest", "kind": "audio",
                                                                  "streamed": "no", "outcome": "answered"})


@pytest.mark.server
def test_the_image_builds_runs_as_non_root_answers_a_spoken_turn_and_keeps_it_across_a_restart(tmp_path):
    engine = container_engine()
    ensure_base_image(engine, tmp_path)
    build_image(engine)

    config = sh(engine, "image", "inspect", "--format", "{{json .Config.Env}} {{.Config.User}}", IMAGE).stdout
    assert "1000" in config.split()[-1] and "DATA_DIR=/data" in config
    assert "PIP_CERT" not in config and "extra-ca" not in config
    leftovers = sh(engine, "run", "--rm", "--entrypoint", "sh", IMAGE, "-c",
                   "ls -A /tmp; grep -rls CAInfo /etc/apt/ || true").stdout
    assert leftovers.strip() == "", f"the build left files behind: {leftovers}"

    name, volume, port = f"voiceqna-test-{uuid.uuid4().hex[:8]}", f"voiceqna-test-{uuid.uuid4().hex[:8]}", free_port()
    base_url = f"http://127.0.0.1:{port}"
    try:
        sh(engine, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:7860", "-v", f"{volume}:/data", IMAGE)
        wait_healthy(engine, name)
        assert "Uid:\t1000\t" in sh(engine, "exec", name, "cat", "/proc/1/status").stdout  # the app itself

        conversation_id = requests.post(f"{base_url}/api/create", json={}, timeout=30).json()["id"]
        wav = espeak_wav("고마워요", tmp_path / "turn.wav").read_bytes()
        response = requests.post(f"{base_url}/api/send/audio/{conversation_id}", timeout=300,
                                 files={"audio": ("turn.wav", wav, "audio/wav")})
        assert response.status_code == 200, response.text[:500]
        turn = response.json()
        assert turn["transcript"] and turn["text"] and turn["audio"], {k: str(v)[:80] for k, v in turn.items()}
        assert audio_turns(base_url) == 1

        sh(engine, "restart", name, timeout=120)
        wait_healthy(engine, name)
        stored = requests.get(f"{base_url}/api/{conversation_id}", timeout=30).json()
        assert [(m["role"], m["message"]) for m in stored] == [("user", turn["transcript"]),
                                                               ("assistant", turn["text"])]
        assert audio_turns(base_url) == 0  # a new process: its own counters
    finally:
        sh(engine, "rm", "-f", name, check=False)
        sh(engine, "volume", "rm", "-f", volume, check=False)


# --- compose.yaml: configuration only (MongoDB's and nginx's images cannot be pulled here) ---


def compose_command() -> list[str] | None:
    if runs(["docker", "compose", "version"]):
        return ["docker", "compose"]
    if importlib.util.find_spec("podman_compose") is not None and runs(["podman", "--version"]):
        return [sys.executable, "-m", "podman_compose"]
    return None


def test_compose_holds_the_app_on_mongodb_and_a_replicas_profile_behind_nginx():
    compose = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert services["mongodb"]["image"].startswith("docker.io/library/mongo:")
    assert "mongodb-data:/data/db" in services["mongodb"]["volumes"] and "mongodb-data" in compose["volumes"]
    for name in ("app", "api-1", "api-2"):
        environment = services[name]["environment"]
        assert environment["STORE"] == "mongodb" and environment["MONGODB_URI"] == "mongodb://mongodb:27017"
        assert services[name]["image"] == "voiceqna:latest"
        assert not [value for key, value in environment.items() if "KEY" in key and not value.startswith("${")]
    assert "profiles" not in services["app"] and "profiles" not in services["mongodb"]
    for name in ("api-1", "api-2", "nginx"):
        assert services[name]["profiles"] == ["replicas"]
    assert services["api-1"]["command"] == ["--api-only"]
    nginx = (PROJECT_ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    assert "server api-1:7860" in nginx and "server api-2:7860" in nginx and "proxy_buffering off" in nginx
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["nginx"]["volumes"]


@pytest.mark.parametrize("profile", [[], ["--profile", "replicas"]], ids=["single", "replicas"])
def test_compose_config_is_accepted_by_compose(profile):
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor podman-compose (with podman) is installed: `make test` installs them")
    result = subprocess.run([*command, "-f", "compose.yaml", *profile, "config"], cwd=PROJECT_ROOT,
                            env=engine_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    rendered = yaml.safe_load(result.stdout)
    expected = {"app", "mongodb"} | ({"api-1", "api-2", "nginx"} if profile else set())
    assert set(rendered["services"]) == expected
