#!/usr/bin/python3
"""Checks that deploy/kubernetes agrees with the programs: ports, probe paths, probe timeouts
above the 5 s check timeout, the grace period above the drain budget, variable names the server
declares, and the security context. Usage: manifest_test.py ROOT FLOVYN_SERVER_BINARY"""
import os
import re
import subprocess
import sys

import yaml

root, server = sys.argv[1], sys.argv[2]
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


# The server's declared settings (variable name -> default), from its own reference output.
ref = subprocess.run([server, "--config-reference"], capture_output=True, text=True, check=True).stdout
declared = {}
for line in ref.splitlines():
    m = re.match(r"\| `([A-Z0-9_]+)`(?: \(or `[A-Z0-9_]+`\))* \| `[^`]+` \| [^|]+ \| (?:`([^`]*)`|–) \|", line)
    if m:
        declared[m.group(1)] = m.group(2)
    for alias in re.findall(r"\(or `([A-Z0-9_]+)`\)", line):
        declared.setdefault(alias, None)
check(len(declared) >= 14, "the server declares its settings (%d found)" % len(declared))

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

cm = docs[("ConfigMap", "flovyn-server")]["data"]
dep = docs[("Deployment", "flovyn-server")]
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]

# Variable names: every ConfigMap key and env entry is a setting the server reads.
for key in cm:
    check(key in declared, "ConfigMap key %s is a declared server setting" % key)
for e in c.get("env", []):
    check(e["name"] in declared, "env %s is a declared server setting" % e["name"])
for e in docs[("Job", "flovyn-server-migrate")]["spec"]["template"]["spec"]["containers"][0].get("env", []):
    check(e["name"] in declared, "Job env %s is a declared server setting" % e["name"])

# Ports agree with the configuration (and the programs' defaults).
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
check(ports.get("http") == int(cm["SERVER_PORT"]) == int(declared["SERVER_PORT"]), "http port")
check(ports.get("grpc") == int(cm["GRPC_SERVER_PORT"]) == int(declared["GRPC_SERVER_PORT"]), "grpc port")
check(ports.get("metrics") == int(cm["METRICS__PORT"]) == int(declared["METRICS__PORT"]), "metrics port")
svc = docs[("Service", "flovyn-server")]["spec"]
for p in svc["ports"]:
    check(p["targetPort"] in ports, "Service port %s targets a container port" % p["name"])
check(svc["selector"] == dep["spec"]["selector"]["matchLabels"], "Service selects the Deployment's pods")
pdb = docs[("PodDisruptionBudget", "flovyn-server")]["spec"]
check(pdb["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"], "PDB selects the Deployment's pods")

# Probes on the contract's paths, with timeouts above the 5 s dependency check.
expected = {"startupProbe": "/_/health/startup", "livenessProbe": "/_/health/live", "readinessProbe": "/_/health/ready"}
for probe, path in expected.items():
    p = c[probe]
    check(p["httpGet"]["path"] == path, "%s path is %s" % (probe, path))
    check(p["httpGet"]["port"] in ("http", ports["http"]), "%s uses the HTTP port" % probe)
    if probe != "livenessProbe":  # liveness checks nothing: any timeout works
        check(p["timeoutSeconds"] > 5, "%s timeout above the 5 s check timeout" % probe)
grpc_variant = load(os.path.join(kdir, "components", "grpc-readiness", "kustomization.yaml"))[0]
patch = yaml.safe_load(grpc_variant["patches"][0]["patch"])[0]["value"]
check(patch["grpc"]["port"] == ports["grpc"], "native gRPC readiness probe on the gRPC port")
check(patch["timeoutSeconds"] > 5, "gRPC readiness timeout above the check timeout")

# Grace period above the drain budget.
budget = int(cm["SHUTDOWN__DELAY_SECS"]) + int(cm["SHUTDOWN__TIMEOUT_SECS"])
check(pod["terminationGracePeriodSeconds"] > budget,
      "terminationGracePeriodSeconds %d > SHUTDOWN__DELAY_SECS + SHUTDOWN__TIMEOUT_SECS = %d"
      % (pod["terminationGracePeriodSeconds"], budget))

# Security and resources.
for name, spec in (("Deployment", pod), ("Job", docs[("Job", "flovyn-server-migrate")]["spec"]["template"]["spec"])):
    check(spec["securityContext"].get("runAsNonRoot") is True, "%s runs as non-root" % name)
    sc = spec["containers"][0]["securityContext"]
    check(sc.get("readOnlyRootFilesystem") is True, "%s read-only root filesystem" % name)
    check(sc.get("allowPrivilegeEscalation") is False, "%s no privilege escalation" % name)
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], "%s drops all capabilities" % name)
    check("requests" in spec["containers"][0].get("resources", {}), "%s has resource requests" % name)
check(docs[("Job", "flovyn-server-migrate")]["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"],
      "the migration Job runs `migrate`")
check(c.get("args") == ["serve"], "the Deployment runs `serve`")

for f in failures:
    print("FAIL:", f)
print("%d passed, %d failed" % (checks - len(failures), len(failures)))
sys.exit(1 if failures else 0)
