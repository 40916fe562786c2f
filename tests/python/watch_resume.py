"""watch.Watch().stream resumes after the server ends the watch.

The server runs with `--min-request-timeout N` (N = argv[2]), so it ends every watch that has
no timeoutSeconds after a random time in [N, 2N) seconds. The client must reconnect with the
last resourceVersion it saw and receive every event exactly once."""

import threading
import time

from kubernetes import client, watch
from kubernetes.watch.watch import iter_resp_lines

from skiff_common import check, configmap, make_namespace, setup, step


def main():
    api_client, args = setup(timeout_seconds=120)
    n = float(args[0])
    core = client.CoreV1Api(api_client)
    ns = "py-watch-resume"
    make_namespace(core, ns)

    step("the server ends a watch without timeoutSeconds after [N, 2N) seconds")
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    t0 = time.monotonic()
    resp = core.list_namespaced_config_map(
        ns, watch=True, resource_version=rv, _preload_content=False
    )
    check(resp.status == 200, "watch status %s" % resp.status)
    ctype = resp.headers.get("Content-Type", "")
    check(ctype.startswith("application/json"), "watch Content-Type %r" % ctype)
    for line in iter_resp_lines(resp):
        if line.strip():
            print("   event while idle:", line[:200])
    elapsed = time.monotonic() - t0
    resp.release_conn()
    check(n * 0.9 <= elapsed <= 2 * n + 3,
          "server closed the watch after %.1fs, expected within [%s, %s)" % (elapsed, n, 2 * n))

    step("Watch().stream reconnects with the last resourceVersion and loses nothing")
    rv0 = core.list_namespaced_config_map(ns).metadata.resource_version
    gap = 2 * n + 1  # longer than any server-side timeout: forces a reconnect between events

    def writer():
        time.sleep(0.5)
        core.create_namespaced_config_map(ns, configmap("r1", {"v": "1"}))
        time.sleep(gap)
        core.create_namespaced_config_map(ns, configmap("r2", {"v": "1"}))
        time.sleep(gap)
        core.patch_namespaced_config_map("r1", ns, {"data": {"v": "2"}})
        core.delete_namespaced_config_map("r2", ns)

    calls = []

    def counted_list(*a, **kw):
        calls.append(kw.get("resource_version"))
        return core.list_namespaced_config_map(*a, **kw)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    w = watch.Watch(return_type=client.V1ConfigMap)
    seen = []
    for ev in w.stream(counted_list, ns, resource_version=rv0):
        obj = ev["object"]
        name = obj.metadata.name
        if not name.startswith("r"):
            continue  # e.g. kube-root-ca.crt published by a controller
        seen.append((ev["type"], name, (obj.data or {}).get("v")))
        print("   event:", seen[-1], "rv", obj.metadata.resource_version, flush=True)
        if len(seen) >= 4:
            w.stop()
            break
    t.join()
    expected = [("ADDED", "r1", "1"), ("ADDED", "r2", "1"), ("MODIFIED", "r1", "2"),
                ("DELETED", "r2", "1")]
    check(seen == expected, "events %r, expected %r" % (seen, expected))
    print("   watch requests (resourceVersion of each):", calls)
    check(len(calls) >= 3, "expected the stream to be resumed at least twice, requests: %r" % calls)
    check(calls[0] == rv0, calls)
    check(all(c is not None and c.isdigit() for c in calls), calls)
    check(int(calls[-1]) > int(rv0), "later watches must resume from a newer resourceVersion")
    print("watch_resume: all checks passed")


if __name__ == "__main__":
    main()
