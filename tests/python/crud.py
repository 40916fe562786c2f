"""CRUD with the official Python client: create, get, list with label selectors, replace with
a stale resourceVersion (409), patch (strategic merge, merge, JSON patch), delete."""

import datetime
import json

from kubernetes import client
from kubernetes.client.rest import ApiException

from skiff_common import check, configmap, make_namespace, setup, step


def expect_api_error(status, reason, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ApiException as e:
        check(e.status == status, "expected HTTP %s, got %s: %s" % (status, e.status, e.body))
        body = json.loads(e.body)
        check(body.get("kind") == "Status", "error body is not a Status: %s" % e.body)
        check(body.get("reason") == reason, "expected reason %s: %s" % (reason, e.body))
        check(body.get("code") == status, "Status.code: %s" % e.body)
        return body
    raise AssertionError("expected ApiException %s %s, the call succeeded" % (status, reason))


def main():
    api_client, _ = setup()
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    ns = "py-crud"

    step("create")
    make_namespace(core, ns)
    a = core.create_namespaced_config_map(
        ns, configmap("a", {"k": "v"}, {"app": "web", "tier": "front"})
    )
    check(a.metadata.name == "a" and a.metadata.namespace == ns, a.metadata)
    check(a.metadata.uid, "uid missing")
    check(a.metadata.resource_version.isdigit(), "resourceVersion %r" % a.metadata.resource_version)
    check(isinstance(a.metadata.creation_timestamp, datetime.datetime), "creationTimestamp")
    core.create_namespaced_config_map(ns, configmap("b", {"k": "v"}, {"app": "db"}))
    core.create_namespaced_config_map(ns, configmap("c", {"k": "v"}, {"other": "x"}))
    expect_api_error(409, "AlreadyExists", core.create_namespaced_config_map, ns,
                     configmap("a", {"k": "again"}))

    step("get")
    got = core.read_namespaced_config_map("a", ns)
    check(got.data == {"k": "v"}, got.data)
    check(got.metadata.labels == {"app": "web", "tier": "front"}, got.metadata.labels)
    check(got.metadata.uid == a.metadata.uid, "uid changed")
    expect_api_error(404, "NotFound", core.read_namespaced_config_map, "nope", ns)

    step("list with label selectors")

    def names(selector):
        lst = core.list_namespaced_config_map(ns, label_selector=selector)
        check(lst.metadata.resource_version.isdigit(), "list resourceVersion")
        return sorted(i.metadata.name for i in lst.items)

    check(names("app=web") == ["a"], names("app=web"))
    check(names("app") == ["a", "b"], names("app"))
    check(names("app in (web,db)") == ["a", "b"], names("app in (web,db)"))
    check(names("app,app!=web") == ["b"], names("app,app!=web"))
    check(names("app,app notin (db)") == ["a"], names("app,app notin (db)"))
    check(names("app=web,tier=front") == ["a"], names("app=web,tier=front"))
    check(names("other,!app") == ["c"], names("other,!app"))
    check(names("app=none") == [], names("app=none"))
    all_names = names("")
    check({"a", "b", "c"} <= set(all_names), all_names)
    across = client.CoreV1Api(api_client).list_config_map_for_all_namespaces(label_selector="app=web")
    check([(i.metadata.namespace, i.metadata.name) for i in across.items] == [(ns, "a")],
          "all-namespace list with selector")

    step("replace, then replace with a stale resourceVersion")
    rv1 = got.metadata.resource_version
    got.data = {"k": "v2"}
    r2 = core.replace_namespaced_config_map("a", ns, got)
    check(r2.data == {"k": "v2"}, r2.data)
    check(int(r2.metadata.resource_version) > int(rv1), "resourceVersion must increase")
    stale = configmap("a", {"k": "stale"}, {"app": "web"})
    stale.metadata.resource_version = rv1
    body = expect_api_error(409, "Conflict", core.replace_namespaced_config_map, "a", ns, stale)
    check("the object has been modified" in body.get("message", ""), body)
    check(core.read_namespaced_config_map("a", ns).data == {"k": "v2"}, "stale replace wrote")

    step("patch")
    dep = apps.create_namespaced_deployment(ns, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web", labels={"app": "web"}),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(
                    name="web", image="busybox:1.36", command=["sleep", "3600"],
                    env=[client.V1EnvVar(name="A", value="1")],
                    ports=[client.V1ContainerPort(container_port=80, name="http")],
                )]),
            ),
        ),
    ))
    check(dep.metadata.generation == 1, "generation %r" % dep.metadata.generation)
    # A dict body is sent as a strategic merge patch: containers merge by name, env by name.
    p = apps.patch_namespaced_deployment("web", ns, {"spec": {
        "replicas": 3,
        "template": {"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}]}},
    }})
    check(p.spec.replicas == 3, p.spec.replicas)
    check(p.metadata.generation == 2, "generation after spec patch %r" % p.metadata.generation)
    cs = p.spec.template.spec.containers
    check(len(cs) == 1, "containers merged by name: %r" % cs)
    check(cs[0].image == "busybox:1.36", cs[0].image)
    check(cs[0].command == ["sleep", "3600"], cs[0].command)
    check(sorted((e.name, e.value) for e in cs[0].env) == [("A", "1"), ("B", "2")], cs[0].env)
    check([(x.container_port, x.name) for x in cs[0].ports] == [(80, "http")], cs[0].ports)
    # JSON merge patch: null deletes a key.
    m = core.patch_namespaced_config_map(
        "a", ns, {"data": {"k": None, "k2": "x"}},
        _content_type="application/merge-patch+json",
    )
    check(m.data == {"k2": "x"}, m.data)
    # A list body is sent as a JSON patch.
    j = core.patch_namespaced_config_map(
        "a", ns, [{"op": "add", "path": "/metadata/labels/extra", "value": "yes"},
                  {"op": "replace", "path": "/data/k2", "value": "y"}],
    )
    check(j.metadata.labels.get("extra") == "yes", j.metadata.labels)
    check(j.data == {"k2": "y"}, j.data)
    expect_api_error(404, "NotFound", core.patch_namespaced_config_map, "nope", ns, {"data": {}})

    step("scale subresource")
    s = apps.read_namespaced_deployment_scale("web", ns)
    check(s.spec.replicas == 3 and s.status.replicas is not None, s)

    step("delete")
    core.delete_namespaced_config_map("a", ns)
    expect_api_error(404, "NotFound", core.read_namespaced_config_map, "a", ns)
    check("a" not in names(""), "a still listed after delete")
    apps.delete_namespaced_deployment("web", ns)
    expect_api_error(404, "NotFound", apps.read_namespaced_deployment, "web", ns)
    expect_api_error(404, "NotFound", core.delete_namespaced_config_map, "a", ns)
    print("crud: all checks passed")


if __name__ == "__main__":
    main()
