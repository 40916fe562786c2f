"""A watch from a resourceVersion older than the server's history window gets an ERROR event
with a 410 Status; watch.Watch().stream raises ApiException(410) and the client re-lists and
watches again from the fresh resourceVersion.

The server runs with `--watch-history-seconds N` (N = argv[2])."""

import json
import threading
import time

from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

from skiff_common import check, configmap, make_namespace, setup, step


def main():
    api_client, args = setup(timeout_seconds=90)
    n = float(args[0])
    core = client.CoreV1Api(api_client)
    ns = "py-watch-relist"
    make_namespace(core, ns)

    step("make a resourceVersion fall out of the %ss history window" % n)
    core.create_namespaced_config_map(ns, configmap("h0", {"v": "0"}))
    rv_old = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, configmap("h1", {"v": "1"}))
    core.create_namespaced_config_map(ns, configmap("h2", {"v": "2"}))
    time.sleep(2 * n + 1)
    h3 = core.create_namespaced_config_map(ns, configmap("h3", {"v": "3"}))
    time.sleep(0.2)

    step("raw watch from the old resourceVersion: 200, one ERROR event with Status 410")
    resp = core.list_namespaced_config_map(
        ns, watch=True, resource_version=rv_old, _preload_content=False,
        _request_timeout=30,
    )
    check(resp.status == 200, "watch status %s (the apiserver answers 410 inside the stream)"
          % resp.status)
    lines = [line for line in iter_resp_lines(resp) if line.strip()]
    resp.release_conn()
    check(len(lines) == 1, "expected exactly one event then end of stream, got %r" % lines)
    ev = json.loads(lines[0])
    check(ev.get("type") == "ERROR", ev)
    st = ev.get("object", {})
    check(st.get("kind") == "Status" and st.get("apiVersion") == "v1", st)
    check(st.get("code") == 410, st)
    check(st.get("reason") == "Expired", st)
    check("too old resource version" in st.get("message", ""), st)

    step("Watch().stream raises ApiException(410) after its one retry")
    w = watch.Watch()
    try:
        for e in w.stream(core.list_namespaced_config_map, ns, resource_version=rv_old):
            raise AssertionError("unexpected event from an expired watch: %r" % (e["type"],))
        raise AssertionError("stream ended without the 410")
    except ApiException as e:
        check(e.status == 410, "expected ApiException 410, got %s %s" % (e.status, e.reason))

    step("re-list and watch again from the fresh resourceVersion")
    lst = core.list_namespaced_config_map(ns)
    rv_new = lst.metadata.resource_version
    check(int(rv_new) >= int(h3.metadata.resource_version), "list resourceVersion is stale")
    names = sorted(i.metadata.name for i in lst.items if i.metadata.name.startswith("h"))
    check(names == ["h0", "h1", "h2", "h3"], names)

    def writer():
        time.sleep(0.5)
        core.create_namespaced_config_map(ns, configmap("h4", {"v": "4"}))

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    seen = []
    w = watch.Watch()
    for e in w.stream(core.list_namespaced_config_map, ns, resource_version=rv_new):
        name = e["object"].metadata.name
        if name.startswith("h"):
            seen.append((e["type"], name))
        if name == "h4":
            w.stop()
            break
    t.join()
    check(seen == [("ADDED", "h4")], "after the re-list only new events arrive: %r" % seen)
    print("watch_relist: all checks passed")


if __name__ == "__main__":
    main()
