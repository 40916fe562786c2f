//! Imperative `kubectl create secret generic | configmap | namespace`. kubectl's typed client
//! sends these as protobuf request bodies, so they test skiff's protobuf decoder end to end.

mod common;

use common::{b64, Server};

#[test]
fn create_secret_generic() {
    let server = Server::start();
    let api = server.api();
    let kubectl = server.kubectl();

    // A file with every byte value, to check binary data survives protobuf decoding.
    let blob: Vec<u8> = (0..=255u8).collect();
    let blob_path = server.dir().join("blob.bin");
    std::fs::write(&blob_path, &blob).unwrap();
    let from_file = format!("--from-file=blob={}", blob_path.display());

    let out = kubectl.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        "default",
        "--from-literal=user=admin",
        "--from-literal=pass=s3cr3t with spaces",
        &from_file,
    ]);
    assert_eq!(out.trim(), "secret/creds created");

    let s = api.get_json("/api/v1/namespaces/default/secrets/creds");
    assert_eq!(s["kind"], "Secret");
    assert_eq!(s["type"], "Opaque", "{s}");
    assert_eq!(b64(&s["data"]["user"]), "admin", "{s}");
    assert_eq!(b64(&s["data"]["pass"]), "s3cr3t with spaces", "{s}");
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD.decode(s["data"]["blob"].as_str().expect("blob")).unwrap();
    assert_eq!(raw, blob, "binary secret data must be stored byte for byte");
    assert!(s["metadata"]["uid"].is_string(), "{s}");

    // Typed secrets and labels through the same path.
    kubectl.ok(&["create", "secret", "generic", "typed", "--type=example.com/custom", "--from-literal=k=v"]);
    let t = api.get_json("/api/v1/namespaces/default/secrets/typed");
    assert_eq!(t["type"], "example.com/custom", "{t}");

    // A second create is AlreadyExists and changes nothing.
    let rv = s["metadata"]["resourceVersion"].clone();
    let dup = kubectl.fails(&["create", "secret", "generic", "creds", "--from-literal=user=other"]);
    assert!(dup.stderr.contains("already exists"), "{}", dup.stderr);
    let s2 = api.get_json("/api/v1/namespaces/default/secrets/creds");
    assert_eq!(s2["metadata"]["resourceVersion"], rv);
    assert_eq!(b64(&s2["data"]["user"]), "admin");
}

#[test]
fn create_configmap() {
    let server = Server::start();
    let api = server.api();
    let kubectl = server.kubectl();
    let file = server.dir().join("app.properties");
    std::fs::write(&file, "a=1\nb = two words\n").unwrap();
    let from_file = format!("--from-file={}", file.display());

    let out = kubectl.ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
        "--from-literal=empty=",
        "--from-literal=unicode=grüße ✓",
        &from_file,
    ]);
    assert_eq!(out.trim(), "configmap/settings created");
    let cm = api.get_json("/api/v1/namespaces/default/configmaps/settings");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["data"]["mode"], "fast", "{cm}");
    assert_eq!(cm["data"]["empty"], "", "{cm}");
    assert_eq!(cm["data"]["unicode"], "grüße ✓", "{cm}");
    assert_eq!(cm["data"]["app.properties"], "a=1\nb = two words\n", "{cm}");
    assert_eq!(cm["data"].as_object().map(|m| m.len()), Some(4), "{cm}");

    let dup = kubectl.fails(&["create", "configmap", "settings", "--from-literal=x=y"]);
    assert!(dup.stderr.contains("already exists"), "{}", dup.stderr);
}

#[test]
fn create_namespace_then_use_it() {
    let server = Server::start();
    let api = server.api();
    let kubectl = server.kubectl();

    let out = kubectl.ok(&["create", "namespace", "team-a"]);
    assert_eq!(out.trim(), "namespace/team-a created");
    let ns = api.get_json("/api/v1/namespaces/team-a");
    assert_eq!(ns["kind"], "Namespace");
    assert_eq!(ns["metadata"]["name"], "team-a");
    assert!(ns["metadata"]["namespace"].is_null(), "cluster-scoped: {ns}");
    assert_eq!(ns["status"]["phase"], "Active", "{ns}");

    // Objects can be created in it through the protobuf path too.
    kubectl.ok(&["create", "configmap", "inside", "-n", "team-a", "--from-literal=k=v"]);
    let cm = api.get_json("/api/v1/namespaces/team-a/configmaps/inside");
    assert_eq!(cm["metadata"]["namespace"], "team-a");

    let out = kubectl.ok(&["get", "namespace", "team-a", "-o", "name"]);
    assert_eq!(out.trim(), "namespace/team-a");

    // An invalid name is rejected by the server (422), not created.
    let bad = kubectl.fails(&["create", "namespace", "Team_B"]);
    assert!(bad.stderr.contains("Invalid"), "{}", bad.stderr);
    api.get("/api/v1/namespaces/Team_B").expect(404);
}
