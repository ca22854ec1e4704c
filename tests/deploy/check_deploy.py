#!/usr/bin/env python3
"""Static checks of compose/ (Docker cannot run on the CI machines).

- both compose files parse as YAML and have the expected services;
- every file they name (build context, Dockerfile, env_file, bind-mounted ./paths) exists;
- every ${VAR} they use is set in .env.example or has a default (${VAR:-x}, ${VAR:?msg});
- every service command is one of our binaries, and every --flag it passes appears in that
  binary's --help (so the compose files cannot drift from the programs);
- the Dockerfile names only stages and files that exist, and has a HEALTHCHECK and a USER.
Usage: check_deploy.py SOURCE_DIR BIN_DIR
"""
import os, re, subprocess, sys

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is not installed")
    sys.exit(77)

src, bindir = sys.argv[1], sys.argv[2]
compose = os.path.join(src, "compose")
failures = []

def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)

env_vars = set()
for line in open(os.path.join(compose, ".env.example")):
    line = line.strip()
    if line and not line.startswith("#") and "=" in line:
        env_vars.add(line.split("=", 1)[0])
env_committed = set()
for line in open(os.path.join(compose, ".env")):
    line = line.strip()
    if line and not line.startswith("#") and "=" in line:
        env_committed.add(line.split("=", 1)[0])
if env_vars != env_committed:
    fail(".env and .env.example name different variables: %s" % sorted(env_vars ^ env_committed))

help_cache = {}
def help_text(binary):
    if binary not in help_cache:
        path = os.path.join(bindir, binary)
        if not os.path.exists(path):
            fail("compose runs %s, which the build does not produce" % binary)
            help_cache[binary] = ""
        else:
            out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=20)
            help_cache[binary] = out.stdout + out.stderr
    return help_cache[binary]

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?][^}]*)?\}")

def check_vars(text, where):
    for name, default in VAR.findall(text):
        if not default and name not in env_vars:
            fail("%s uses ${%s} with no default and no entry in .env.example" % (where, name))

def check_compose(name, expected_services):
    path = os.path.join(compose, name)
    text = open(path).read()
    doc = yaml.safe_load(text)
    check_vars(text, name)
    services = doc.get("services", {})
    for s in expected_services:
        if s not in services:
            fail("%s: no service %s" % (name, s))
    for sname, svc in services.items():
        build = svc.get("build")
        if build:
            ctx = os.path.normpath(os.path.join(compose, build["context"]))
            if not os.path.isdir(ctx):
                fail("%s/%s: build context %s missing" % (name, sname, ctx))
            if not os.path.isfile(os.path.join(ctx, build["dockerfile"])):
                fail("%s/%s: Dockerfile %s missing" % (name, sname, build["dockerfile"]))
        for env_file in ([svc["env_file"]] if isinstance(svc.get("env_file"), str) else svc.get("env_file", [])):
            if not os.path.isfile(os.path.join(compose, env_file)):
                fail("%s/%s: env_file %s missing" % (name, sname, env_file))
        for vol in svc.get("volumes", []):
            host = vol.split(":", 1)[0]
            if host.startswith("./") and not os.path.exists(os.path.join(compose, host)):
                fail("%s/%s: volume source %s missing" % (name, sname, host))
        cmd = svc.get("command")
        if not isinstance(cmd, list) or not cmd:
            fail("%s/%s: command must be a non-empty list" % (name, sname))
            continue
        helptext = help_text(cmd[0])
        for arg in cmd[1:]:
            if arg.startswith("--"):
                flag = arg.split("=", 1)[0]
                if helptext and flag not in helptext:
                    fail("%s/%s: %s does not accept %s (not in its --help)" % (name, sname, cmd[0], flag))
        if "restart" not in svc:
            fail("%s/%s: no restart policy" % (name, sname))
        # A bridge with --keys must start on a fresh deployment: the file is shipped with a
        # key, or the bridge makes one (--make-key); else it exits and restarts for ever.
        if cmd[0] == "vdgx-bridge" and "--keys" in cmd and "--make-key" not in cmd:
            fail("%s/%s: --keys without --make-key: a fresh deployment has no key" % (name, sname))
        # On a host without a broker, the health check must ask the remote broker: the image's
        # default (vdgx health) probes 127.0.0.1, where nothing listens.
        env = svc.get("environment", {}) or {}
        if "broker" not in services:
            hc = (svc.get("healthcheck") or {}).get("test")
            if not hc or "vdgx" not in hc:
                fail("%s/%s: no health check of its own on a worker host" % (name, sname))
            else:
                for arg in hc:
                    if arg.startswith("--") and arg not in help_text("vdgx"):
                        fail("%s/%s: health check flag %s unknown to vdgx" % (name, sname, arg))
            ep = str(env.get("VDGX_BROKER", "")) if isinstance(env, dict) else ""
            if not ep or "127.0.0.1" in ep or "localhost" in ep:
                fail("%s/%s: VDGX_BROKER (used by the health check) must name the remote broker" % (name, sname))
            if "--curve-server-key" in cmd and not (isinstance(env, dict) and env.get("VDGX_CURVE_CERT")):
                fail("%s/%s: the health check has no CURVE certificate (VDGX_CURVE_CERT)" % (name, sname))
        # One certificate naming convention: NAME.key (public) and NAME.key_secret.
        for i, arg in enumerate(cmd):
            if arg == "--curve-server-key" and not cmd[i + 1].endswith(".key"):
                fail("%s/%s: --curve-server-key %s is not a NAME.key file" % (name, sname, cmd[i + 1]))
            if arg == "--curve-cert" and not cmd[i + 1].endswith(".key_secret"):
                fail("%s/%s: --curve-cert %s is not a NAME.key_secret file" % (name, sname, cmd[i + 1]))
        if cmd[0] == "vdgx-worker":
            devices = svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
            if not any("gpu" in d.get("capabilities", []) for d in devices):
                fail("%s/%s: worker without a GPU reservation" % (name, sname))

check_compose("docker-compose.yml", ["broker", "bridge", "wan21-1.3b"])
check_compose("docker-compose.worker.yml", ["wan21-1.3b"])

dockerfile = open(os.path.join(compose, "Dockerfile")).read()
stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile, re.M | re.I)
for ref in re.findall(r"--from=(\S+)", dockerfile):
    if ref not in stages:
        fail("Dockerfile copies from unknown stage %s" % ref)
if len(stages) < 2:
    fail("Dockerfile is not multi-stage")
if not re.search(r"^HEALTHCHECK .*vdgx.*health", dockerfile, re.M | re.S):
    fail("Dockerfile has no HEALTHCHECK running vdgx health")
if not re.search(r"^USER\s+(?!root)\S+", dockerfile, re.M):
    fail("Dockerfile does not switch to a non-root user")
for target in ("vdgx", "vdgx-broker", "vdgx-worker", "vdgx-bridge"):
    help_text(target)

print("deploy checks: %s" % ("FAILED (%d)" % len(failures) if failures else "passed"))
sys.exit(1 if failures else 0)
