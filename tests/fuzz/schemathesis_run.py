#!/usr/bin/env python3
"""Fuzz a running skiff API server with Schemathesis over the OpenAPI v3 documents it serves.

Driven by `tests/fuzz_schemathesis.rs` (which starts a throwaway server), or by hand:

    .venv-fuzz/bin/python tests/fuzz/schemathesis_run.py --url https://127.0.0.1:PORT \
        --ca ca.pem --token-file token [--seed N] [--budget SECONDS] [--report out.json]

What it does, deterministically (fixed Hypothesis seed per operation, mode and pass; no example
database; the case lists are fixed by the seed, only how far the depth passes get depends on the
machine's speed):
  1. Reads `/openapi/v3` (the index of group-versions) and every document it lists.
  2. Generates cases for every operation of every document with Schemathesis, in modes:
     `positive` (valid per the schema), `targeted` (valid, but with the path parameters fixed
     to `namespace=default` and `name=fuzz`, so that GET/PUT/PATCH/DELETE and subresources reach
     an object that exists: the driver (re)creates a minimal `fuzz` object of the kind before
     each such operation when it knows how to), `negative` (schema-violating query parameters
     and bodies, with the same fixed path parameters, so that they get past the lookup of the
     namespace and object) and `coverage` (Schemathesis's deterministic boundary cases: missing
     and wrongly typed parameters, duplicated query parameters, unexpected methods and content
     types). Passes, breadth first: one case of every operation per mode; --coverage-cases
     coverage cases per operation; then depth passes of up to --max-examples more cases per
     operation and mode, sharing what is left of --budget. `DELETE /api/v1/namespaces` (which
     would take the namespace of the targeted cases with it) runs last.
  3. Sends each case (admin bearer token, TLS verified against the cluster CA) and checks the
     response:
       - no 500 and no 502, ever;
       - every 5xx carries a JSON `Status` body (`"kind": "Status"`) whose `code` is the HTTP code;
       - 503 only with reason ServiceUnavailable; 504 only with reason Timeout and a
         `details.causes` entry with reason ResourceVersionTooLarge; 429 only with reason
         TooManyRequests and a Retry-After header;
       - no dropped connection and no hang (a response, whole, within --request-timeout) —
         except watches: a watch that answers 200 is closed by the client at once (its stream
         is not read), and a client-side timeout on a watch is fine;
       - the server stays up: after a transport error it is probed, and a dead server ends the
         run at once.
  4. Afterwards `GET /api/v1/namespaces/default` must answer 200 within one second.

Prints a summary (requests, status histogram, distinct findings each with a reproduction) and
writes it as JSON with --report. Exit status: 0 clean, 1 findings, 2 the harness itself failed.
The run is bounded: --budget seconds, after which no case is started (the passes that did not
finish are reported), and --operation-budget seconds per operation and mode in a depth pass.
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import sys
import tempfile
import time
import traceback
import zlib
from urllib.parse import urlsplit

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import GenerationMode

# The name of the object every `targeted` case addresses, and the namespace it lives in.
TARGET_NAME = "fuzz"
TARGET_NS = "default"

# A minimal valid object per (group-version, plural), created as `fuzz` before `targeted` cases.
SEEDS = {
    ("v1", "configmaps"): {"kind": "ConfigMap", "data": {"k": "v"}},
    ("v1", "secrets"): {"kind": "Secret", "stringData": {"k": "v"}},
    ("v1", "serviceaccounts"): {"kind": "ServiceAccount"},
    ("v1", "services"): {"kind": "Service", "spec": {"selector": {"app": "fuzz"}, "ports": [{"port": 80}]}},
    ("v1", "endpoints"): {
        "kind": "Endpoints",
        "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}],
    },
    ("v1", "events"): {
        "kind": "Event",
        "involvedObject": {"kind": "Pod", "name": "fuzz", "namespace": TARGET_NS, "apiVersion": "v1"},
        "reason": "Fuzz",
        "message": "fuzz",
        "type": "Normal",
    },
    ("v1", "pods"): {
        "kind": "Pod",
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}]},
    },
    ("v1", "nodes"): {"kind": "Node"},
    ("v1", "namespaces"): {"kind": "Namespace"},
    ("apps/v1", "deployments"): {"kind": "Deployment", "spec": "WORKLOAD"},
    ("apps/v1", "replicasets"): {"kind": "ReplicaSet", "spec": "WORKLOAD"},
    ("apps/v1", "daemonsets"): {"kind": "DaemonSet", "spec": "WORKLOAD"},
    ("apps/v1", "statefulsets"): {"kind": "StatefulSet", "spec": "WORKLOAD"},
    ("batch/v1", "jobs"): {
        "kind": "Job",
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}],
                }
            }
        },
    },
    ("batch/v1", "cronjobs"): {
        "kind": "CronJob",
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}],
                        }
                    }
                }
            },
        },
    },
    ("coordination.k8s.io/v1", "leases"): {"kind": "Lease", "spec": {"holderIdentity": "fuzz"}},
    ("discovery.k8s.io/v1", "endpointslices"): {
        "kind": "EndpointSlice",
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"]}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    },
}

WORKLOAD_SPEC = {
    "replicas": 1,
    "selector": {"matchLabels": {"app": "fuzz"}},
    "template": {
        "metadata": {"labels": {"app": "fuzz"}},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}]},
    },
}

MODES = ("positive", "targeted", "negative")
# How the time left for the depth passes is shared: negative cases of big kinds are the
# costliest to generate.
DEPTH_WEIGHT = {"positive": 1, "targeted": 1, "negative": 2}
# Coverage cases looked at per operation (they are listed deterministically), and sent.
COVERAGE_SCAN = 400
# Operations run after every other one: they can take the namespace `targeted` cases use with them.
DESTRUCTIVE = {("DELETE", "/api/v1/namespaces")}
DESTRUCTIVE_RESERVE = 5.0  # seconds of the budget kept for them


class _OperationSpent(BaseException):
    """Raised from inside a Hypothesis test to stop an operation whose time is up (a BaseException,
    so that Hypothesis does not take it for a failing example)."""
TRUE_WORDS = {"1", "t", "T", "TRUE", "true", "True"}


class Fuzzer:
    def __init__(self, args):
        self.args = args
        self.base = args.url.rstrip("/")
        token = args.token or open(args.token_file).read().strip()
        self.session = requests.Session()
        # Never take a CA bundle or proxy from the environment (REQUESTS_CA_BUNDLE would replace
        # the cluster CA): TLS is verified against the cluster CA alone.
        self.session.trust_env = False
        self.session.verify = args.ca
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.started = time.monotonic()
        self.deadline = self.started + args.budget
        self.pass_deadline = self.deadline
        self.stage_deadline = self.deadline
        self.requests = 0
        self.histogram = collections.Counter()
        self.per_doc = collections.Counter()
        self.client_skipped = collections.Counter()  # cases the client could not even send
        self.generation_errors = []  # (operation, mode, error): Schemathesis could not generate
        self.skipped = []  # "mode operation" left out when the budget ran out
        self.stage_times = []  # (mode, operations, requests, seconds) per pass
        self.created = 0  # objects named by shape_body for creates
        self.strategies = {}  # (document, operation, mode) -> Hypothesis strategy
        self.op_times = []  # (seconds, mode, operation)
        self.cut_short = 0  # (operation, mode) pairs stopped by --operation-budget
        self.findings = collections.OrderedDict()  # key -> {"count", "repro", ...}
        self.server_dead = None
        self.watches_closed = 0
        self.watch_timeouts = 0
        self.seed_failures = collections.Counter()

    # ----------------------------------------------------------------------------------------
    # schemas

    def load_documents(self):
        r = self.session.get(self.base + "/openapi/v3", timeout=30)
        if r.status_code != 200:
            raise SystemExit(f"harness: GET /openapi/v3 answered {r.status_code}: {r.text[:500]}")
        index = r.json().get("paths") or {}
        wanted = [g for g in sorted(index) if not self.args.only or g in self.args.only]
        for must in ("api/v1", "apis/apps/v1"):
            if must in index and must not in wanted and not self.args.only:
                wanted.append(must)
            if must not in index:
                raise SystemExit(f"harness: /openapi/v3 does not list {must}: {sorted(index)}")
        docs = []
        for gv in wanted:
            url = index[gv].get("serverRelativeURL")
            if not url:
                raise SystemExit(f"harness: /openapi/v3 entry {gv} has no serverRelativeURL")
            d = self.session.get(self.base + url, timeout=60)
            if d.status_code != 200:
                raise SystemExit(f"harness: GET {url} answered {d.status_code}: {d.text[:500]}")
            docs.append((gv, d.json()))
        return docs

    # ----------------------------------------------------------------------------------------
    # sending and checking

    def over_budget(self):
        return time.monotonic() > self.stage_deadline

    def send(self, gv, op_label, mode, case):
        """Send one generated case and check the response."""
        if self.server_dead or self.over_budget():
            return
        if mode in ("targeted", "negative"):
            self.shape_body(case)
        try:
            kw = case.as_transport_kwargs(base_url=self.base)
        except Exception as e:  # noqa: BLE001 - Schemathesis could not serialize this case
            self.client_skipped[f"serialize: {type(e).__name__}"] += 1
            return
        headers = {k: v for k, v in (kw.get("headers") or {}).items() if k.lower() != "authorization"}
        req = requests.Request(
            method=kw["method"],
            url=kw["url"],
            headers=headers,
            params=kw.get("params"),
            data=kw.get("data"),
            json=kw.get("json"),
            files=kw.get("files"),
            cookies=kw.get("cookies"),
        )
        try:
            prepared = self.session.prepare_request(req)
        except Exception as e:  # noqa: BLE001 - e.g. a header value requests refuses to encode
            self.client_skipped[f"prepare: {type(e).__name__}"] += 1
            return
        self.exchange(gv, op_label, mode, prepared)

    def shape_body(self, case):
        """Give an object body of a create, update or apply the identity the server checks first
        (apiVersion, kind, metadata.name, no stale resourceVersion), so that the rest of the
        generated (or schema-violating) content reaches admission: defaults and validation."""
        body = case.body
        if not isinstance(body, dict) or case.method.upper() not in ("POST", "PUT", "PATCH"):
            return
        gvk = (case.operation.definition.raw or {}).get("x-kubernetes-group-version-kind")
        if not isinstance(gvk, dict) or not gvk.get("kind"):
            return
        media = (case.media_type or "").lower()
        if case.method.upper() == "PATCH" and "apply-patch" not in media:
            return  # merge and strategic patches stay as generated
        last = case.operation.path.rstrip("/").rsplit("/", 1)[-1]
        if "{name}" in case.operation.path and last != "{name}" and last != "status":
            return  # a subresource (scale, binding, eviction, ...): its body is of another kind
        body = dict(body)
        group, version = gvk.get("group") or "", gvk.get("version") or ""
        body["apiVersion"] = f"{group}/{version}" if group else version
        body["kind"] = gvk["kind"]
        meta = body.get("metadata")
        meta = dict(meta) if isinstance(meta, dict) else {}
        if case.method.upper() == "POST":
            self.created += 1
            meta["name"] = f"{TARGET_NAME}-{self.created}"
        else:
            meta["name"] = (case.path_parameters or {}).get("name", TARGET_NAME)
        meta.pop("resourceVersion", None)
        meta.pop("namespace", None)
        meta.pop("generateName", None)
        body["metadata"] = meta
        case.body = body

    def exchange(self, gv, op_label, mode, prepared):
        watch = is_watch(prepared.url)
        self.requests += 1
        self.per_doc[gv] += 1
        t0 = time.monotonic()
        try:
            resp = self.session.send(
                prepared,
                stream=True,
                allow_redirects=False,
                timeout=(5, self.args.request_timeout),
            )
        except requests.exceptions.InvalidHeader as e:
            self.requests -= 1
            self.per_doc[gv] -= 1
            self.client_skipped[f"send: {type(e).__name__}"] += 1
            return
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as e:
            if watch and isinstance(e, requests.exceptions.ReadTimeout):
                self.watch_timeouts += 1
                self.histogram["watch-timeout"] += 1
                return
            self.histogram["no-response"] += 1
            self.transport_failure(gv, op_label, mode, prepared, e, time.monotonic() - t0)
            return
        status = resp.status_code
        self.histogram[str(status)] += 1
        if watch and status == 200:
            # A watch stream: its headers are the answer; the client closes it at once.
            self.watches_closed += 1
            resp.close()
            return
        body, complete, err = read_body(resp, self.args.request_timeout)
        resp.close()
        if not complete:
            if watch:
                self.watch_timeouts += 1
            else:
                self.histogram["incomplete-body"] += 1
                self.finding(
                    gv,
                    op_label,
                    mode,
                    prepared,
                    f"{status}/body-not-complete",
                    f"the response body did not complete within {self.args.request_timeout}s ({err})",
                    status,
                    resp.headers,
                    body,
                )
            return
        for problem in check_response(status, resp.headers, body):
            self.finding(gv, op_label, mode, prepared, f"{status}/{problem[0]}", problem[1], status, resp.headers, body)

    def transport_failure(self, gv, op_label, mode, prepared, err, elapsed):
        alive = self.server_alive()
        what = "hang" if isinstance(err, requests.exceptions.Timeout) else "no-response"
        detail = f"{type(err).__name__} after {elapsed:.1f}s: {str(err)[:300]}"
        if not alive:
            self.server_dead = f"the server stopped answering after this request ({detail})"
            what = "server-died"
            detail = self.server_dead
        self.finding(gv, op_label, mode, prepared, what, detail, None, {}, b"")

    def server_alive(self):
        for _ in range(3):
            try:
                r = self.session.get(self.base + "/api/v1/namespaces/default", timeout=(2, 5))
                if r.status_code < 500:
                    return True
            except requests.exceptions.RequestException:
                pass
            time.sleep(0.5)
        return False

    def finding(self, gv, op_label, mode, prepared, problem, detail, status, headers, body):
        key = f"{op_label} -> {problem}"
        f = self.findings.get(key)
        if f is None:
            f = {
                "operation": op_label,
                "problem": problem,
                "detail": detail,
                "mode": mode,
                "document": gv,
                "count": 0,
                "repro": repro(prepared, status, headers, body),
            }
            self.findings[key] = f
        f["count"] += 1

    # ----------------------------------------------------------------------------------------
    # targeted mode: a `fuzz` object per kind

    def ensure_seed(self, gv, path_template):
        """(Re)create the `fuzz` object the path template addresses, when the driver knows how."""
        parts = path_template.split("/")
        if "{name}" not in parts:
            return
        i = parts.index("{name}")
        plural = parts[i - 1]
        group_version = gv.split("/", 1)[1]  # api/v1 -> v1, apis/apps/v1 -> apps/v1
        spec = SEEDS.get((group_version, plural))
        if spec is None:
            return
        collection = "/".join(parts[: i - 1]).replace("{namespace}", TARGET_NS) + "/" + plural
        obj = {k: (WORKLOAD_SPEC if v == "WORKLOAD" else v) for k, v in spec.items()}
        obj = {"apiVersion": group_version, "metadata": {"name": TARGET_NAME}, **obj}
        try:
            r = self.session.get(f"{self.base}{collection}/{TARGET_NAME}", timeout=10)
            if r.status_code == 200:
                return
            r = self.session.post(self.base + collection, json=obj, timeout=10)
            if r.status_code not in (200, 201, 409):
                self.seed_failures[f"POST {collection}: {r.status_code}"] += 1
        except requests.exceptions.RequestException as e:
            self.seed_failures[f"POST {collection}: {type(e).__name__}"] += 1

    # ----------------------------------------------------------------------------------------
    # the run

    def run(self):
        docs = self.load_documents()
        config = schemathesis.Config()
        plan = []
        for gv, doc in docs:
            schema = schemathesis.openapi.from_dict(doc, config=config)
            ops = []
            for result in schema.get_all_operations():
                try:
                    ops.append(result.ok())
                except Exception as e:  # noqa: BLE001 - an operation Schemathesis cannot load
                    self.generation_errors.append((gv, "load", repr(e)[:300]))
            ops.sort(key=lambda o: (o.path, o.method))
            plan.extend((gv, op) for op in ops)
        self.operations = len(plan)
        print(
            f"fuzz: {len(docs)} documents ({', '.join(gv for gv, _ in docs)}), {len(plan)} operations, "
            f"seed {self.args.seed}, {self.args.max_examples} examples per operation and mode, "
            f"budget {self.args.budget}s",
            flush=True,
        )
        # Breadth first: a `breadth` pass per mode sends one case of every operation; `depth`
        # passes then send up to --max-examples more (another seed), each pass with an equal
        # share of what is left of the budget (what one leaves unused goes to the next). So a
        # run that the budget cuts short has still sent every operation in every mode. The
        # destructive operations come last, with a reserve of their own.
        destructive = [(gv, op) for gv, op in plan if (op.method.upper(), op.path) in DESTRUCTIVE]
        plan = [(gv, op) for gv, op in plan if (op.method.upper(), op.path) not in DESTRUCTIVE]
        main = (
            [("breadth", m, plan, 1) for m in MODES]
            + [("coverage", "coverage", plan, self.args.coverage_cases)]
            + [("depth", m, plan, self.args.max_examples) for m in MODES]
        )
        final = [("last", m, destructive, self.args.max_examples) for m in MODES]
        for i, (stage, mode, ops, examples) in enumerate(main + final):
            t0 = time.monotonic()
            if i < len(main):
                self.stage_deadline = self.deadline - DESTRUCTIVE_RESERVE
                weights = [DEPTH_WEIGHT.get(m, 0) if st == "depth" else 0 for st, m, _, _ in main[i:]]
                share = weights[0] / sum(weights) if sum(weights) else 0
                self.pass_deadline = t0 + max(0.0, self.stage_deadline - t0) * share
            else:
                self.stage_deadline = self.pass_deadline = self.deadline
            before = self.requests
            for n, (gv, op) in enumerate(ops):
                if self.server_dead:
                    break
                if self.over_budget() or (stage == "depth" and time.monotonic() > self.pass_deadline):
                    self.skipped.extend(f"{stage} {mode} {o.method.upper()} {o.path}" for _, o in ops[n:])
                    break
                if mode == "coverage":
                    self.coverage_operation(gv, op, examples)
                else:
                    self.fuzz_operation(gv, op, mode, stage, examples, len(ops) - n)
            self.stage_times.append((f"{stage} {mode}", len(ops), self.requests - before, time.monotonic() - t0))
        return docs

    def coverage_operation(self, gv, op, count):
        """Send `count` of Schemathesis's coverage cases (deterministic boundary and edge values:
        missing and wrongly typed parameters, duplicated query parameters, unexpected methods and
        content types), evenly spread over the first COVERAGE_SCAN it lists, with the path
        parameters of the `targeted` mode."""
        label = f"{op.method.upper()} {op.path}"
        schema = op.schema
        try:
            cases = []
            for case in schema.iter_coverage_cases(
                op,
                generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                generation_config=schema.config.generation_for(operation=op),
            ):
                cases.append(case)
                if len(cases) >= COVERAGE_SCAN:
                    break
        except Exception as e:  # noqa: BLE001
            self.generation_errors.append((label, "coverage", f"{type(e).__name__}: {str(e)[:300]}"))
            return
        if not cases:
            return
        picked = sorted({round(i * (len(cases) - 1) / max(1, count - 1)) for i in range(count)})
        fixed = {"namespace": TARGET_NS, "name": TARGET_NAME}
        if "{name}" in op.path:
            self.ensure_seed(gv, op.path)
        for i in picked:
            case = cases[i]
            if isinstance(case.path_parameters, dict):
                for k in list(case.path_parameters):
                    # Keep the cases that are about a path parameter as they are.
                    if k in fixed and isinstance(case.path_parameters[k], str) and case.path_parameters[k] == "0":
                        case.path_parameters[k] = fixed[k]
            self.send(gv, label, "coverage", case)

    def fuzz_operation(self, gv, op, mode, stage, examples, ops_left):
        label = f"{op.method.upper()} {op.path}"
        path_params = [seg[1:-1] for seg in op.path.split("/") if seg.startswith("{")]
        fixed = None
        if mode == "targeted" and not path_params:
            return  # the same cases as `positive`
        if mode in ("targeted", "negative") and path_params:
            fixed = {}
            if "namespace" in path_params:
                fixed["namespace"] = TARGET_NS
            if "name" in path_params:
                fixed["name"] = TARGET_NAME
            self.ensure_seed(gv, op.path)
        gen_mode = GenerationMode.NEGATIVE if mode == "negative" else GenerationMode.POSITIVE
        key = (gv, label, mode)
        strategy = self.strategies.get(key)
        if strategy is None:
            # Built once per operation and mode: building one for a big schema is costly.
            try:
                strategy = op.as_strategy(generation_mode=gen_mode, path_parameters=fixed)
            except Exception as e:  # noqa: BLE001
                self.generation_errors.append((label, mode, repr(e)[:300]))
                return
            self.strategies[key] = strategy
        case_seed = self.args.seed ^ zlib.crc32(f"{gv} {label} {mode} {stage}".encode())
        # An equal share of what is left of the pass, at most --operation-budget; the first case
        # of every operation is sent whatever the clock says (until the whole budget is spent).
        now = time.monotonic()
        share = max(0.0, self.pass_deadline - now) / max(1, ops_left)
        op_deadline = now + min(self.args.operation_budget, share)

        @seed(case_seed)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
            report_multiple_bugs=False,
            print_blob=False,
        )
        @given(strategy)
        def fuzz_case(case):
            self.send(gv, label, mode, case)
            if time.monotonic() > op_deadline:
                raise _OperationSpent()

        t0 = time.monotonic()
        try:
            fuzz_case()
        except _OperationSpent:
            if stage == "depth":
                self.cut_short += 1
        except Exception as e:  # noqa: BLE001 - generation problems are the harness's, not the server's
            self.generation_errors.append((label, mode, f"{type(e).__name__}: {str(e)[:300]}"))
        finally:
            self.op_times.append((round(time.monotonic() - t0, 2), f"{stage} {mode}", label))

    def final_check(self):
        """The server must answer a normal GET within a second after the run."""
        try:
            t0 = time.monotonic()
            r = self.session.get(self.base + "/api/v1/namespaces/default", timeout=(1, 1))
            took = time.monotonic() - t0
            if r.status_code != 200:
                return f"GET /api/v1/namespaces/default after the run answered {r.status_code}: {r.text[:300]}"
            if took > 1.0:
                return f"GET /api/v1/namespaces/default after the run took {took:.2f}s"
        except requests.exceptions.RequestException as e:
            return f"GET /api/v1/namespaces/default after the run failed: {type(e).__name__}: {e}"
        return None

    def namespace_warnings(self):
        """Namespaces upstream never lets go (NamespaceLifecycle admission) that the run deleted.
        Reported, not failed on: it is not a 5xx, which is what this harness gates on."""
        out = []
        for ns in ("default", "kube-system", "kube-public"):
            try:
                r = self.session.get(f"{self.base}/api/v1/namespaces/{ns}", timeout=5)
                if r.status_code == 200 and (r.json().get("metadata") or {}).get("deletionTimestamp"):
                    out.append(f"namespace {ns} was deleted during the run (upstream forbids deleting it)")
                elif r.status_code != 200:
                    out.append(f"GET namespace {ns} after the run answered {r.status_code}")
            except (requests.exceptions.RequestException, ValueError) as e:
                out.append(f"GET namespace {ns} after the run: {type(e).__name__}")
        return out


# --------------------------------------------------------------------------------------------
# helpers


def is_watch(url):
    """True for `/watch/` paths and requests with a true-ish `watch` query parameter."""
    parts = urlsplit(url)
    if "/watch/" in parts.path + "/":
        return True
    from urllib.parse import parse_qsl

    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k == "watch" and v in TRUE_WORDS:
            return True
    return False


def read_body(resp, limit_s):
    """The whole body, read for at most `limit_s` seconds: (bytes, complete, error)."""
    deadline = time.monotonic() + limit_s
    chunks = []
    try:
        for chunk in resp.iter_content(65536):
            chunks.append(chunk)
            if time.monotonic() > deadline:
                return b"".join(chunks), False, "deadline"
    except requests.exceptions.RequestException as e:
        return b"".join(chunks), False, f"{type(e).__name__}: {str(e)[:200]}"
    return b"".join(chunks), True, None


def check_response(status, headers, body):
    """Problems with one response: [(short name, explanation)]."""
    problems = []
    if status < 500 and status != 429:
        return problems
    status_obj = None
    try:
        status_obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        pass
    if not isinstance(status_obj, dict) or status_obj.get("kind") != "Status":
        problems.append(("no-status-body", f"a {status} without a JSON Status body"))
        status_obj = {}
    elif status_obj.get("code") != status:
        problems.append(("status-code-mismatch", f"Status.code {status_obj.get('code')!r} != HTTP {status}"))
    reason = status_obj.get("reason")
    if status in (500, 502):
        problems.append(("server-error", f"HTTP {status} (reason {reason!r})"))
    elif status == 503:
        if reason != "ServiceUnavailable":
            problems.append(("wrong-reason", f"503 with reason {reason!r}, not ServiceUnavailable"))
    elif status == 504:
        causes = ((status_obj.get("details") or {}).get("causes")) or []
        rv_too_large = any(isinstance(c, dict) and c.get("reason") == "ResourceVersionTooLarge" for c in causes)
        if reason != "Timeout" or not rv_too_large:
            problems.append(
                ("wrong-reason", f"504 with reason {reason!r} and causes {causes!r}, not Timeout/ResourceVersionTooLarge")
            )
    elif status == 429:
        if reason != "TooManyRequests":
            problems.append(("wrong-reason", f"429 with reason {reason!r}, not TooManyRequests"))
        if not headers.get("Retry-After"):
            problems.append(("no-retry-after", "429 without a Retry-After header"))
    return problems


def show_bytes(b, limit=2000):
    if b is None:
        return None
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogateescape")
    try:
        text = b.decode("utf-8")
        return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"
    except UnicodeDecodeError:
        enc = base64.b64encode(b).decode()
        return "base64:" + (enc if len(enc) <= limit else enc[:limit] + "...")


def repro(prepared, status, headers, body):
    parts = urlsplit(prepared.url)
    return {
        "method": prepared.method,
        "path": parts.path,
        "query": parts.query,
        "content_type": prepared.headers.get("Content-Type"),
        "body": show_bytes(prepared.body),
        "status": status,
        "response_content_type": headers.get("Content-Type") if headers else None,
        "response_body": show_bytes(body, 1000),
    }


def summarize(f, docs, final_problem, warnings):
    elapsed = time.monotonic() - f.started
    lines = []
    lines.append(
        f"fuzz summary: {f.requests} requests in {elapsed:.1f}s over {f.operations} operations "
        f"of {len(docs)} documents (seed {f.args.seed})"
    )
    lines.append("  requests per document: " + ", ".join(f"{k}={v}" for k, v in sorted(f.per_doc.items())))
    lines.append(
        "  status histogram: "
        + ", ".join(f"{k}={v}" for k, v in sorted(f.histogram.items(), key=lambda kv: (len(kv[0]), kv[0])))
    )
    lines.append(f"  watches closed after their 200 headers: {f.watches_closed}; watch timeouts: {f.watch_timeouts}")
    if f.client_skipped:
        lines.append(
            "  cases the client could not send: " + ", ".join(f"{k}={v}" for k, v in sorted(f.client_skipped.items()))
        )
    if f.seed_failures:
        lines.append(
            "  seed objects not created: " + ", ".join(f"{k} x{v}" for k, v in sorted(f.seed_failures.items()))
        )
    if f.generation_errors:
        lines.append(f"  generation errors (harness, not server): {len(f.generation_errors)}")
        for op, mode, err in f.generation_errors[:20]:
            lines.append(f"    {op} [{mode}]: {err}")
    for name, ops, reqs, secs in f.stage_times:
        lines.append(f"  pass {name}: {ops} operations, {reqs} requests, {secs:.1f}s")
    slowest = sorted(f.op_times, reverse=True)[:5]
    lines.append("  slowest operation/mode pairs: " + "; ".join(f"{m} {op} {t}s" for t, m, op in slowest))
    if f.cut_short:
        lines.append(f"  operation/mode pairs cut short by --operation-budget: {f.cut_short}")
    not_breadth = [x for x in f.skipped if not x.startswith("depth ")]
    if not_breadth:
        lines.append(f"  BUDGET EXHAUSTED: {len(not_breadth)} operation/mode pairs never fuzzed, from {not_breadth[0]}")
    depth_cut = len(f.skipped) - len(not_breadth)
    if depth_cut:
        lines.append(f"  depth passes cut by their share of the budget: {depth_cut} operation/mode pairs got no extra cases")
    if f.server_dead:
        lines.append(f"  SERVER DIED: {f.server_dead}")
    if final_problem:
        lines.append(f"  AFTER THE RUN: {final_problem}")
    for w in warnings:
        lines.append(f"  warning: {w}")
    lines.append(f"  distinct findings: {len(f.findings)}")
    for key, v in f.findings.items():
        r = v["repro"]
        lines.append(f"  - {key}  (x{v['count']}, first in mode {v['mode']})")
        lines.append(f"      {v['detail']}")
        lines.append(f"      request: {r['method']} {r['path']}{'?' + r['query'] if r['query'] else ''}")
        if r["content_type"] or r["body"]:
            lines.append(f"      content-type: {r['content_type']}")
            lines.append(f"      body: {r['body']}")
        lines.append(f"      response: {r['status']} {r['response_content_type']} {r['response_body']}")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="https://127.0.0.1:PORT")
    p.add_argument("--ca", required=True, help="PEM file of the cluster CA")
    p.add_argument("--token", default=os.environ.get("SKIFF_FUZZ_TOKEN"), help="admin bearer token")
    p.add_argument("--token-file", help="file holding the admin bearer token")
    p.add_argument("--seed", type=int, default=20250517)
    p.add_argument("--max-examples", type=int, default=6, help="cases per operation and mode (depth passes)")
    p.add_argument("--budget", type=float, default=120.0, help="seconds of fuzzing before stopping")
    p.add_argument("--coverage-cases", type=int, default=8, help="coverage cases per operation")
    p.add_argument("--operation-budget", type=float, default=1.5, help="seconds per operation and mode")
    p.add_argument("--request-timeout", type=float, default=15.0, help="seconds per response")
    p.add_argument("--only", action="append", help="fuzz only this group-version (e.g. api/v1); repeatable")
    p.add_argument("--report", help="write the summary as JSON here")
    args = p.parse_args()
    if not args.token and not args.token_file:
        p.error("give --token-file, --token or SKIFF_FUZZ_TOKEN")

    # Hypothesis keeps a directory of its own (in the cwd by default): put it in a temp dir.
    hypothesis_home = tempfile.TemporaryDirectory(prefix="skiff-fuzz-hypothesis-")
    set_hypothesis_home_dir(hypothesis_home.name)
    f = Fuzzer(args)
    try:
        docs = f.run()
    except SystemExit:
        raise
    except Exception:  # noqa: BLE001
        print("harness: the fuzz run itself failed:\n" + traceback.format_exc(), flush=True)
        return 2
    final_problem = None if f.server_dead else f.final_check()
    warnings = [] if f.server_dead else f.namespace_warnings()
    text = summarize(f, docs, final_problem, warnings)
    print(text, flush=True)
    if args.report:
        with open(args.report, "w") as out:
            json.dump(
                {
                    "seed": args.seed,
                    "requests": f.requests,
                    "operations": f.operations,
                    "documents": [gv for gv, _ in docs],
                    "histogram": dict(f.histogram),
                    "per_document": dict(f.per_doc),
                    "client_skipped": dict(f.client_skipped),
                    "generation_errors": f.generation_errors,
                    "skipped": f.skipped,
                    "server_dead": f.server_dead,
                    "after_run": final_problem,
                    "warnings": warnings,
                    "findings": list(f.findings.values()),
                    "slowest": sorted(f.op_times, reverse=True)[:30],
                    "seconds": round(time.monotonic() - f.started, 1),
                },
                out,
                indent=1,
            )
    failed = bool(f.findings) or bool(f.server_dead) or bool(final_problem)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
