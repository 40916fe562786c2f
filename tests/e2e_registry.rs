//! Image pulls on a real node from Debian's `docker-registry`, run inside the lab namespace on
//! its own loopback (127.0.0.1:5000, plain HTTP as for any loopback registry) with htpasswd
//! basic auth. The busybox test image is pushed first (the OCI push API, `testkit::registry`)
//! into a plain registry on the host's loopback sharing the storage directory, with a gzip layer
//! and a multi-arch index whose other platform is a bogus manifest. Checks: a pod pulls with
//! basic auth through its imagePullSecrets and runs; a wrong password leaves it in
//! `ErrImagePull` with the registry's message; a pod without pull secrets gets its
//! ServiceAccount's (ServiceAccount admission) and pulls the index as this platform's manifest.

mod common;

use std::time::{Duration, Instant};

use common::lab::{busybox_tarball, Lab};
use serde_json::{json, Value};
use testkit::eventually_blocking;
use testkit::registry::{htpasswd, DockerRegistry, Pusher, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};

const PORT: u16 = 5000;

fn pod(name: &str, image: &str, secret: Option<&str>) -> String {
    let secrets = secret.map(|s| format!("  imagePullSecrets: [{{name: {s}}}]\n")).unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{secrets}  terminationGracePeriodSeconds: 1\n  \
         containers:\n  - name: main\n    image: {image}\n    command: [sleep, '3600']\n"
    )
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[track_caller]
fn wait_running(lab: &Lab, name: &str) -> Value {
    eventually_blocking(&format!("pod {name} Running"), Duration::from_secs(30), || {
        let p = lab.json(&["get", "pod", name]);
        (p.pointer("/status/phase").and_then(Value::as_str) == Some("Running")).then_some(p)
    })
}

#[test]
fn pods_pull_from_a_loopback_registry_with_pull_secrets_and_multi_arch_indexes() {
    let scratch = tempfile::tempdir().expect("tmp");
    let storage = scratch.path().join("storage");
    let arch = host_arch();
    let other = if arch == "s390x" { "ppc64le" } else { "s390x" };
    let (pushed, index_digest) = {
        let port = testkit::free_port();
        let _plain = DockerRegistry::start(&[], scratch.path(), &storage, port, None);
        let p = Pusher::new(&format!("http://127.0.0.1:{port}"));
        let pushed = p.docker_archive(busybox_tarball(), "test/busybox", "1", true);
        // Another platform's manifest, which would not run here.
        let config = serde_json::to_vec(&json!({"architecture": other, "os": "linux"})).expect("json");
        let junk = b"not a layer".to_vec();
        let (c, l) = (p.blob("test/busybox", &config), p.blob("test/busybox", &junk));
        let bogus = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": c, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l, "size": junk.len()}]});
        let (bogus_digest, bogus_size) = p.manifest("test/busybox", "other", OCI_MANIFEST, &bogus);
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": bogus_digest, "size": bogus_size, "platform": {"os": "linux", "architecture": other}},
            {"mediaType": OCI_MANIFEST, "digest": pushed.manifest_digest, "size": pushed.manifest_size,
             "platform": {"os": "linux", "architecture": arch}},
        ]});
        let (index_digest, _) = p.manifest("test/busybox", "multi", OCI_INDEX, &index);
        (pushed, index_digest)
    };

    let lab = Lab::start_with_node(&[]);
    let passwords = scratch.path().join("htpasswd");
    htpasswd(&passwords, "skiff", "open-sesame");
    let auth = format!("{{htpasswd: {{realm: skiff-test, path: \"{}\"}}}}", passwords.display());
    let _registry =
        DockerRegistry::start(&["ip", "netns", "exec", lab.netns()], scratch.path(), &storage, PORT, Some(&auth));
    let server = format!("--docker-server=127.0.0.1:{PORT}");
    for (name, password) in [("regcred", "open-sesame"), ("badcred", "wrong")] {
        let pw = format!("--docker-password={password}");
        lab.k(&["create", "secret", "docker-registry", name, &server, "--docker-username=skiff", &pw]);
    }

    let image = format!("127.0.0.1:{PORT}/test/busybox:1");
    let started = Instant::now();
    lab.apply(&pod("pulled", &image, Some("regcred")));
    // Another tag (an image present on the node runs with IfNotPresent whatever the secret, as
    // upstream), pulled every time.
    let multi_image = format!("127.0.0.1:{PORT}/test/busybox:multi");
    lab.apply(
        &pod("badpass", &multi_image, Some("badcred"))
            .replace("    command:", "    imagePullPolicy: Always\n    command:"),
    );
    let p = wait_running(&lab, "pulled");
    let running_after = started.elapsed();
    let status = &p["status"]["containerStatuses"][0];
    assert_eq!(
        status["imageID"],
        json!(format!("127.0.0.1:{PORT}/test/busybox@{}", pushed.manifest_digest)),
        "{status}"
    );

    // The wrong password: ErrImagePull with the registry's own words, then ImagePullBackOff
    // between attempts, with the last attempt's error (as upstream).
    let (reason, message) = eventually_blocking("badpass failing to pull", Duration::from_secs(30), || {
        let p = lab.json(&["get", "pod", "badpass"]);
        let waiting = &p["status"]["containerStatuses"][0]["state"]["waiting"];
        let reason = waiting["reason"].as_str().unwrap_or("").to_string();
        let message = waiting["message"].as_str().unwrap_or("").to_string();
        matches!(reason.as_str(), "ErrImagePull" | "ImagePullBackOff").then_some((reason, message))
    });
    assert!(message.contains("127.0.0.1:5000: unauthorized: authentication required"), "{reason}: {message}");
    if reason == "ImagePullBackOff" {
        assert!(message.contains("ErrImagePull:"), "{message}");
    }
    assert_eq!(lab.json(&["get", "pod", "badpass"])["status"]["phase"], "Pending");

    // A pod without pull secrets gets the ServiceAccount's; the index gives this platform.
    lab.apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: puller}\nimagePullSecrets: [{name: regcred}]\n");
    let multi = pod("multi", &multi_image, None).replace("spec:\n", "spec:\n  serviceAccountName: puller\n");
    lab.apply(&multi);
    let p = wait_running(&lab, "multi");
    assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "regcred"}]), "copied from the ServiceAccount");
    let status = &p["status"]["containerStatuses"][0];
    assert_eq!(
        status["imageID"],
        json!(format!("127.0.0.1:{PORT}/test/busybox@{}", pushed.manifest_digest)),
        "this platform's manifest out of index {index_digest}: {status}"
    );

    let log = std::fs::read_to_string(lab.dir().join("server.log")).unwrap_or_default();
    let pulls: Vec<&str> = log.lines().filter(|l| l.contains("pulled image")).collect();
    assert!(!pulls.is_empty(), "the kubelet logs its pulls");
    eprintln!("create → Running with the pull: {running_after:?}; kubelet pulls:\n{}", pulls.join("\n"));
}
