#!/usr/bin/env python3
"""Publishes toolgate's ECDS resource: the wasm filter's config, delivered to a running Envoy.

Envoy's extension config discovery (ECDS) reads a DiscoveryResponse holding one
envoy.config.core.v3.TypedExtensionConfig named like the http filter (`toolgate`),
whose typed_config is the envoy.extensions.filters.http.wasm.v3.Wasm filter config. The
plugin configuration inside it carries the policies inline:
`"policies": {"mode": "extend" or "replace", "cedar": ..., "schema": ..., "entities": ...}`.

  ecds.py FILE --policies DIR [--admin HOST:PORT] [--envoy-log PATH]
      FILE exists: replaces only the policies in its plugin configuration. The wasm code,
      vm_config and every other field stay the same, so Envoy reuses the loaded VM.
  ecds.py FILE --wasm WASM --config PLUGIN_JSON [--policies DIR] [--failure-policy P]
      writes a new resource (without --policies the configuration's own `policies` stay)

FILE is written atomically: a temporary file in its directory, renamed over it, which is
what Envoy's `watched_directory` reacts to. With --admin it then waits for Envoy to accept
or reject the update (its ECDS counters) and says which, with toolgate's refusal from the
Envoy log when --envoy-log is given.

A policy folder is read as: every *.cedar file in name order (credentials.cedar,
behaviour.cedar and risk.cedar only when the plugin configuration has `credentials`,
`history` and `risk_feed` respectively, as with the embedded set), its *.cedarschema,
and entities.json plus any *.entities.json. A folder with its own model (a *.cedarschema
besides arguments.cedarschema) replaces the embedded defaults (`"mode": "replace"`);
one without, like examples/demo/, extends them (`"mode": "extend"`): the filter adds
its embedded model and guardrails, as `toolgate validate` does for the same folder.
"""
import argparse
import glob
import hashlib
import json
import os
import sys
import tempfile
import time
import urllib.request

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
EXTENSION_TYPE = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
STRING_TYPE = "type.googleapis.com/google.protobuf.StringValue"
# The http filter's name in the Envoy config, which is also the ECDS resource name.
NAME = "toolgate"
# The file in the watched directory that Envoy's path_config_source names.
RESOURCE_FILE = "toolgate.ecds.json"
# Policy files loaded only when the plugin configuration has their feature (see
# feature_policies in filter/src/policy.rs): without it their context (a token, the
# session history, the risk) is never there and these rules never apply.
FEATURE_POLICIES = {"credentials.cedar": "credentials", "behaviour.cedar": "history", "risk.cedar": "risk_feed"}
# The schema fragment given as `policies.arguments_schema` (see cli/src/mcp_schema.rs).
ARGUMENTS_SCHEMA = "arguments.cedarschema"


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def policy_files(policy_dir, plugin_config):
    """The *.cedar files of a policy folder, in name order."""
    files = sorted(glob.glob(os.path.join(policy_dir, "*.cedar")))
    def wanted(path):
        feature = FEATURE_POLICIES.get(os.path.basename(path))
        return feature is None or feature in plugin_config
    files = [f for f in files if wanted(f)]
    if not files:
        raise ValueError(f"{policy_dir}: no *.cedar files")
    return files


def concatenate(files):
    """The text for `policies.cedar`: the files in order, each after a `// file: NAME` line.

    toolgate names that file and the line in it when it refuses a policy. This is the only
    place that joins files, so that a per-file list can replace it later.
    """
    parts = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        parts.append(f"// file: {os.path.basename(path)}\n{text}" + ("" if text.endswith("\n") else "\n"))
    return "".join(parts)


def read_policies(policy_dir, plugin_config):
    """`policies` for the plugin configuration, from a policy folder."""
    cedar = concatenate(policy_files(policy_dir, plugin_config))
    # The model and the `Arguments` fragment `toolgate schema-from-mcp` generates.
    schemas = sorted(glob.glob(os.path.join(policy_dir, "*.cedarschema")))
    arguments = [s for s in schemas if os.path.basename(s) == ARGUMENTS_SCHEMA]
    model = [s for s in schemas if os.path.basename(s) != ARGUMENTS_SCHEMA]
    if len(model) > 1:
        raise ValueError(f"{policy_dir}: expected at most one *.cedarschema file besides {ARGUMENTS_SCHEMA}"
                         f" (the model, for mode \"replace\"), found {len(model)}")
    policies = {"mode": "replace", "cedar": cedar, "schema": read_text(model[0])} if model else \
        {"mode": "extend", "cedar": cedar}
    if arguments:
        policies["arguments_schema"] = read_text(arguments[0])
    entity_files = sorted(glob.glob(os.path.join(policy_dir, "entities.json")) +
                          glob.glob(os.path.join(policy_dir, "*.entities.json")))
    if entity_files:
        policies["entities"] = []
        for path in entity_files:
            with open(path, encoding="utf-8") as f:
                try:
                    entities = json.load(f)
                except ValueError as e:
                    raise ValueError(f"{path}: {e}") from None
            if not isinstance(entities, list):
                raise ValueError(f"{path}: entities must be a JSON array of Cedar entities")
            policies["entities"].extend(entities)
    return policies


def wasm_filter(plugin_config, wasm, failure_policy="FAIL_RELOAD"):
    """The Wasm filter config; the same fields as the static one in envoy/envoy.yaml."""
    return {
        "@type": WASM_TYPE,
        "config": {
            "name": NAME,
            "root_id": NAME,
            "allow_on_headers_stop_iteration": True,
            "failure_policy": failure_policy,
            "configuration": {"@type": STRING_TYPE, "value": json.dumps(plugin_config, indent=2)},
            # Kept identical across updates: Envoy then reuses the loaded VM and only
            # configures a new plugin instance in it.
            "vm_config": {"vm_id": NAME, "runtime": "envoy.wasm.runtime.v8",
                          "code": {"local": {"filename": wasm}}},
        },
    }


def discovery_response(typed_config):
    configuration = typed_config["config"]["configuration"]["value"]
    return {
        # Names this content (not the policy version, which the filter computes).
        "version_info": hashlib.sha256(configuration.encode()).hexdigest()[:16],
        "resources": [{"@type": EXTENSION_TYPE, "name": NAME, "typed_config": typed_config}],
    }


def plugin_config_of(document):
    """The plugin configuration (a dict) inside a resource file's content."""
    try:
        [resource] = document["resources"]
        return json.loads(resource["typed_config"]["config"]["configuration"]["value"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not a toolgate ECDS resource ({type(e).__name__}: {e})") from None


def with_plugin_config(document, plugin_config):
    """A copy of a resource file's content with another plugin configuration, all else kept."""
    document = json.loads(json.dumps(document))
    [resource] = document["resources"]
    resource["typed_config"]["config"]["configuration"]["value"] = json.dumps(plugin_config, indent=2)
    return discovery_response(resource["typed_config"])


def publish(path, document):
    """Writes the file atomically: a temporary file in the same directory, renamed over it."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


ECDS_STATS = "extension_config_discovery.http_filter.toolgate."


def ecds_counters(admin):
    """Envoy's ECDS stats for the toolgate filter, from the admin /stats: counters, and
    version_text (the version_info of the update Envoy last accepted)."""
    url = f"http://{admin}/stats?filter=^{ECDS_STATS.replace('.', '[.]')}"
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    counters = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if name.startswith(ECDS_STATS):
            key = name[len(ECDS_STATS):]
            counters[key] = int(value) if value.isdigit() else value.strip('"')
    return counters


def wait_for_envoy(admin, before, log_path, log_offset, timeout):
    """Waits for Envoy to accept or reject the update; returns True when accepted."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        now = ecds_counters(admin)
        if now.get("update_rejected", 0) > before.get("update_rejected", 0):
            print(f"REJECTED by Envoy: the previous config keeps serving "
                  f"(update_rejected {now['update_rejected']}, config_fail {now.get('config_fail')})")
            for line in refusals(log_path, log_offset):
                print(f"  {line}")
            return False
        if now.get("update_success", 0) > before.get("update_success", 0):
            print(f"accepted by Envoy (update_success {now['update_success']}); new requests use it")
            return True
        time.sleep(0.1)
    print(f"Envoy did not pick the update up within {timeout} s (is it watching this directory?)")
    return False


def refusals(log_path, offset):
    """toolgate's refusal lines written to the Envoy log after offset."""
    if not log_path or not os.path.exists(log_path):
        return ["(toolgate's reason is in the Envoy log: grep 'configuration refused')"]
    deadline = time.time() + 2
    while True:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            f.seek(offset)
            lines = [line.rstrip("\n") for line in f if "toolgate: configuration refused" in line]
        if lines:
            return [line[line.index("toolgate: configuration refused"):] for line in lines[:1]]
        if time.time() > deadline:
            # Envoy checks each distinct configuration once and remembers the verdict.
            return [f"(Envoy refused this configuration before, without asking toolgate again; "
                    f"the reason is in an earlier 'configuration refused' line of {log_path})"]
        time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("file", help=f"the resource file Envoy watches (its directory is watched), e.g. DIR/{RESOURCE_FILE}")
    parser.add_argument("--policies", help="policy folder")
    parser.add_argument("--wasm", help="toolgate.wasm, as Envoy sees the path (writes a new resource)")
    parser.add_argument("--config", help="plugin configuration JSON (writes a new resource)")
    parser.add_argument("--failure-policy", default="FAIL_RELOAD")
    parser.add_argument("--admin", help="Envoy admin HOST:PORT: wait for it to accept or reject the update")
    parser.add_argument("--envoy-log", help="Envoy's log, to show toolgate's reason for a rejection")
    parser.add_argument("--timeout", type=float, default=15)
    args = parser.parse_args()

    create = args.wasm or args.config
    if create and not (args.wasm and args.config):
        parser.error("a new resource needs both --wasm and --config")
    if not create and not os.path.exists(args.file):
        parser.error(f"{args.file} does not exist; give --wasm and --config to write a new one")
    if not create and not args.policies:
        parser.error("give --policies DIR (the folder to publish)")
    try:
        if create:
            with open(args.config, encoding="utf-8") as f:
                try:
                    plugin_config = json.load(f)
                except ValueError as e:
                    raise ValueError(f"{args.config}: {e}") from None
        else:
            document = load(args.file)
            plugin_config = plugin_config_of(document)
        if args.policies:
            plugin_config["policies"] = read_policies(args.policies, plugin_config)
        if create:
            document = discovery_response(wasm_filter(plugin_config, args.wasm, args.failure_policy))
        else:
            document = with_plugin_config(document, plugin_config)
        if not create and document == load(args.file):
            # Envoy ignores a config equal to the last one it was given, even a rejected one.
            serving = ecds_counters(args.admin).get("version_text") if args.admin else None
            if serving is not None and serving != document["version_info"]:
                sys.exit(f"{args.file} already has this content, and Envoy rejected it (it serves "
                         f"version_info {serving}): fix the policies and publish again")
            print(f"{args.file} already has this content; nothing to publish")
            return
        before = ecds_counters(args.admin) if args.admin else None
        log_offset = os.path.getsize(args.envoy_log) if args.envoy_log and os.path.exists(args.envoy_log) else 0
        publish(args.file, document)
    except (OSError, ValueError) as e:
        sys.exit(f"ecds.py: {e}")
    print(f"published {args.file} (version_info {document['version_info']})")
    if args.policies:
        policies = plugin_config["policies"]
        files = [line[len("// file: "):] for line in policies["cedar"].splitlines() if line.startswith("// file: ")]
        print(f"  policies from {args.policies}: {', '.join(files)}; {len(policies.get('entities', []))} entities")
    if args.admin and not wait_for_envoy(args.admin, before, args.envoy_log, log_offset, args.timeout):
        sys.exit(1)


if __name__ == "__main__":
    main()
