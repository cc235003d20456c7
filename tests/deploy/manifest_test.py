#!/usr/bin/python3
"""Checks that deploy/kubernetes and deploy/docker agree with the programs: ports, probe paths,
probe timeouts above the 5 s check timeout, the grace period above the drain budget, variable
names each program declares, the security context, and the images' user, ports and stop
signal. Usage: manifest_test.py ROOT FLOVYN_SERVER_BINARY FLOVYN_APP_BINARY"""
import os
import re
import subprocess
import sys

import yaml

root, server, app = sys.argv[1], sys.argv[2], sys.argv[3]
kdir = os.path.join(root, "deploy", "kubernetes")
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def declared_settings(binary):
    """Variable name -> default, from the program's own --config-reference output."""
    ref = subprocess.run([binary, "--config-reference"], capture_output=True, text=True, check=True).stdout
    out = {}
    for line in ref.splitlines():
        m = re.match(r"\| `([A-Z0-9_]+)`(?: \(or `[A-Z0-9_]+`\))* \| `[^`]+` \| [^|]+ \| (?:`([^`]*)`|–) \|", line)
        if m:
            out[m.group(1)] = m.group(2)
        for alias in re.findall(r"\(or `([A-Z0-9_]+)`\)", line):
            out.setdefault(alias, None)
    return out


# Every kustomization's resources and components exist.
docs = {}
for dirpath, _, files in os.walk(kdir):
    for name in files:
        if not name.endswith(".yaml"):
            continue
        path = os.path.join(dirpath, name)
        for d in load(path):
            if d.get("kind") in ("Kustomization", "Component"):
                for r in d.get("resources", []) + d.get("components", []):
                    check(os.path.exists(os.path.join(dirpath, r)), "%s: %s exists" % (path, r))
            else:
                docs[(d["kind"], d["metadata"]["name"])] = d

programs = {
    "flovyn-server": {"binary": server, "port_var": "SERVER_PORT", "secret_vars": ["DATABASE_URL", "WORKER_TOKEN_SECRET"],
                      "probes": {"startupProbe": "/_/health/startup", "livenessProbe": "/_/health/live",
                                 "readinessProbe": "/_/health/ready"},
                      "min_settings": 14},
    "flovyn-app": {"binary": app, "port_var": "PORT", "secret_vars": ["DATABASE_URL", "BETTER_AUTH_SECRET"],
                   "probes": {"startupProbe": "/api/health/startup", "livenessProbe": "/api/health/live",
                              "readinessProbe": "/api/health/ready"},
                   "min_settings": 7},
}
contract_app_vars = ["DATABASE_URL", "BACKEND_URL", "BETTER_AUTH_SECRET", "BETTER_AUTH_TRUST_HOST",
                     "NEXT_PUBLIC_APP_URL", "NODE_ENV", "PORT"]

for name, prog in programs.items():
    declared = declared_settings(prog["binary"])
    check(len(declared) >= prog["min_settings"], "%s declares its settings (%d found)" % (name, len(declared)))
    cm = docs[("ConfigMap", name)]["data"]
    dep = docs[("Deployment", name)]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    job = docs[("Job", name + "-migrate")]
    job_pod = job["spec"]["template"]["spec"]

    # Variable names: every ConfigMap key and env entry is a setting the program reads.
    for key in cm:
        check(key in declared, "%s ConfigMap key %s is a declared setting" % (name, key))
    for e in c.get("env", []) + job_pod["containers"][0].get("env", []):
        check(e["name"] in declared, "%s env %s is a declared setting" % (name, e["name"]))
    for var in prog["secret_vars"]:
        refs = [e for e in c.get("env", []) if e["name"] == var]
        check(len(refs) == 1 and "secretKeyRef" in refs[0].get("valueFrom", {}), "%s takes %s from a Secret" % (name, var))
        check(var not in cm, "%s keeps %s out of the ConfigMap" % (name, var))

    # Ports agree with the configuration and the program's defaults.
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(ports.get("http") == int(cm[prog["port_var"]]) == int(declared[prog["port_var"]]), "%s http port" % name)
    if name == "flovyn-server":
        check(ports.get("grpc") == int(cm["GRPC_SERVER_PORT"]) == int(declared["GRPC_SERVER_PORT"]), "grpc port")
        check(ports.get("metrics") == int(cm["METRICS__PORT"]) == int(declared["METRICS__PORT"]), "metrics port")
    svc = docs[("Service", name)]["spec"]
    for p in svc["ports"]:
        check(p["targetPort"] in ports, "%s Service port %s targets a container port" % (name, p["name"]))
    check(svc["selector"] == dep["spec"]["selector"]["matchLabels"], "%s Service selects the Deployment's pods" % name)
    pdb = docs[("PodDisruptionBudget", name)]["spec"]
    check(pdb["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"], "%s PDB selects its pods" % name)

    # Probes on the contract's paths, with timeouts above the 5 s dependency check.
    for probe, path in prog["probes"].items():
        p = c[probe]
        check(p["httpGet"]["path"] == path, "%s %s path is %s" % (name, probe, path))
        check(p["httpGet"]["port"] in ("http", ports["http"]), "%s %s uses the HTTP port" % (name, probe))
        if probe != "livenessProbe":  # liveness checks nothing: any timeout works
            check(p["timeoutSeconds"] > 5, "%s %s timeout above the 5 s check timeout" % (name, probe))

    # Grace period above the drain budget.
    budget = int(cm["SHUTDOWN__DELAY_SECS"]) + int(cm["SHUTDOWN__TIMEOUT_SECS"])
    check(pod["terminationGracePeriodSeconds"] > budget,
          "%s terminationGracePeriodSeconds %d > SHUTDOWN__DELAY_SECS + SHUTDOWN__TIMEOUT_SECS = %d"
          % (name, pod["terminationGracePeriodSeconds"], budget))

    # Security and resources.
    for what, spec in (("Deployment", pod), ("Job", job_pod)):
        check(spec["securityContext"].get("runAsNonRoot") is True, "%s %s runs as non-root" % (name, what))
        check(spec["securityContext"].get("runAsUser") == 10001, "%s %s runs as the image's user 10001" % (name, what))
        sc = spec["containers"][0]["securityContext"]
        check(sc.get("readOnlyRootFilesystem") is True, "%s %s read-only root filesystem" % (name, what))
        check(sc.get("allowPrivilegeEscalation") is False, "%s %s no privilege escalation" % (name, what))
        check(sc.get("capabilities", {}).get("drop") == ["ALL"], "%s %s drops all capabilities" % (name, what))
        check("requests" in spec["containers"][0].get("resources", {}), "%s %s has resource requests" % (name, what))
    check(job_pod["containers"][0]["args"] == ["migrate"], "%s migration Job runs `migrate`" % name)

server_c = docs[("Deployment", "flovyn-server")]["spec"]["template"]["spec"]["containers"][0]
check(server_c.get("args") == ["serve"], "the server Deployment runs `serve`")
app_c = docs[("Deployment", "flovyn-app")]["spec"]["template"]["spec"]["containers"][0]
check("command" not in app_c and "args" not in app_c, "the console Deployment keeps the image's migrate-then-serve entrypoint")
check(docs[("Job", "flovyn-app-migrate")]["spec"]["template"]["spec"]["containers"][0]["command"] ==
      ["/usr/local/bin/flovyn-app"], "the console migration Job calls the binary, not the entrypoint")
app_declared = declared_settings(app)
for var in contract_app_vars:
    check(var in app_declared, "the console declares %s (operations.md)" % var)
    check(var in docs[("ConfigMap", "flovyn-app")]["data"] or var in ("DATABASE_URL", "BETTER_AUTH_SECRET"),
          "the console's manifests set %s" % var)

# The server trusts the console through the console's Service.
server_cm = docs[("ConfigMap", "flovyn-server")]["data"]
app_cm = docs[("ConfigMap", "flovyn-app")]["data"]
check(server_cm["AUTH__JWT__JWKS_URI"] == "http://flovyn-app:%s/.well-known/jwks.json" % app_cm["PORT"],
      "the server fetches the console's JWKS from its Service")
check(server_cm["AUTH__API_KEY__VALIDATE_URL"] == "http://flovyn-app:%s/api/auth/validate-key" % app_cm["PORT"],
      "the server validates API keys at the console's Service")
check(server_cm["AUTH__JWT__ISSUER"] == app_cm["NEXT_PUBLIC_APP_URL"], "JWT issuer is the console's public URL")
check(app_cm["BACKEND_URL"] == "http://flovyn-server:%s" % server_cm["SERVER_PORT"], "the console calls the server's Service")

# The native gRPC readiness variant.
grpc_variant = load(os.path.join(kdir, "components", "grpc-readiness", "kustomization.yaml"))[0]
patch = yaml.safe_load(grpc_variant["patches"][0]["patch"])[0]["value"]
check(patch["grpc"]["port"] == int(server_cm["GRPC_SERVER_PORT"]), "native gRPC readiness probe on the gRPC port")
check(patch["timeoutSeconds"] > 5, "gRPC readiness timeout above the check timeout")

# The images agree: user, exposed ports, stop signal, exec-form entrypoints.
dockerfile = open(os.path.join(root, "deploy", "docker", "Dockerfile")).read()
stages = {m.group(1): m.group(2) for m in re.finditer(r"^FROM \S+ AS (\S+)\n(.*?)(?=^FROM |\Z)", dockerfile, re.M | re.S)}
for name, port_vars in (("flovyn-server", ["SERVER_PORT", "GRPC_SERVER_PORT", "METRICS__PORT"]), ("flovyn-app", ["PORT"])):
    stage = stages.get(name, "")
    declared = declared_settings(programs[name]["binary"])
    exposed = re.search(r"^EXPOSE (.*)$", stage, re.M)
    check(exposed and sorted(exposed.group(1).split()) == sorted(declared[v] for v in port_vars),
          "%s image exposes its default ports" % name)
    check(re.search(r"^USER 10001:10001$", stage, re.M) is not None, "%s image runs as 10001" % name)
    check(re.search(r"^STOPSIGNAL SIGTERM$", stage, re.M) is not None, "%s image stops with SIGTERM" % name)
    check(re.search(r'^ENTRYPOINT \["[^"]+"\]$', stage, re.M) is not None, "%s image has an exec-form entrypoint" % name)
    check("org.opencontainers.image.version" in stage, "%s image carries OCI labels" % name)
entry = open(os.path.join(root, "deploy", "docker", "app-entrypoint.sh")).read()
check(re.search(r"^set -eu", entry, re.M) and entry.index("flovyn-app migrate") < entry.index("exec /usr/local/bin/flovyn-app serve"),
      "the console's entrypoint migrates (failing on error) and then execs serve")

for f in failures:
    print("FAIL:", f)
print("%d passed, %d failed" % (checks - len(failures), len(failures)))
sys.exit(1 if failures else 0)
