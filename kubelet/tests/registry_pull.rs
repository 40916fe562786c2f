//! Registry pulls against Debian's real `docker-registry` on the host's loopback (no node agent
//! runs here): images are pushed into a plain registry, whose storage is then served by a second
//! one that wants bearer tokens (`auth: token`) from a token server this test runs — Docker
//! Hub's flow: a 401 with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, the token
//! fetched from the realm with the user's basic credentials, signed (ES256, `x5c`) by a key whose
//! certificate the registry trusts. Checks: gzip and zstd layers land verified and unpack; a
//! multi-arch index gives this platform's manifest; concurrent pulls of one reference are one
//! pull; blobs the store has are not fetched again; wrong and missing credentials fail with the
//! registry's (or the token server's) own message; a registries config's mirrors are tried in
//! order (a dead one, then this registry with a rewrite and the config's credentials).

mod images_support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine;
use images_support::{arch, gzip, layer, zstd};
use kubelet::runtime::linux::images::ImageStore;
use kubelet::runtime::linux::registry::auth::Credentials;
use kubelet::runtime::linux::registry::hosts::RegistriesFile;
use kubelet::runtime::linux::registry::Registry;
use kubelet::runtime::linux::snapshots::Snapshots;
use serde_json::{json, Value};
use testkit::registry::{DockerRegistry, Pusher, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";
const SERVICE: &str = "skiff-test-registry";
const ISSUER: &str = "skiff-test-issuer";

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The token server: answers `GET /token?service=&scope=` with a JWT granting the scope to
/// alice (basic auth), nothing to an anonymous caller, and a 401 to wrong credentials.
fn token_server(
    listener: TcpListener,
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
    served: Arc<AtomicUsize>,
) {
    let rng = ring::rand::SystemRandom::new();
    let good = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
        let mut request_line = String::new();
        let _ = reader.read_line(&mut request_line);
        let mut authorization = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("authorization") {
                    authorization = Some(v.trim().to_string());
                }
            }
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let scope = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "scope").map(|(_, v)| v.to_string());
        let (status, body) = match authorization.as_deref() {
            Some(a) if a != good => (
                "401 Unauthorized",
                json!({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials for the token"}]}),
            ),
            auth => {
                served.fetch_add(1, Ordering::SeqCst);
                let access: Vec<Value> = match (auth, scope.as_deref().map(|s| s.split(':').collect::<Vec<_>>())) {
                    (Some(_), Some(parts)) if parts.len() == 3 => {
                        vec![
                            json!({"type": parts[0], "name": parts[1], "actions": parts[2].split(',').collect::<Vec<_>>()}),
                        ]
                    }
                    _ => Vec::new(),
                };
                let now = jiff::Timestamp::now().as_second();
                let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [base64::engine::general_purpose::STANDARD.encode(&cert_der)]});
                let claims = json!({
                    "iss": ISSUER, "sub": if auth.is_some() { USER } else { "" }, "aud": SERVICE,
                    "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{}", rand::random::<u64>()),
                    "access": access,
                });
                let signing_input =
                    format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
                let sig = key.sign(&rng, signing_input.as_bytes()).expect("sign the token");
                ("200 OK", json!({"token": format!("{signing_input}.{}", b64url(sig.as_ref()))}))
            }
        };
        let body = body.to_string();
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

/// Lines of the registry's access log for `GET uri` answered 200.
fn served(log: &Path, uri: &str) -> usize {
    let wanted = format!("\"GET {uri} HTTP/1.1\" 200 ");
    std::fs::read_to_string(log).unwrap_or_default().lines().filter(|l| l.contains(&wanted)).count()
}

#[test]
fn token_flow_multi_arch_zstd_dedup_and_errors_against_docker_registry() {
    let dir = tempfile::tempdir().expect("tmp");
    let storage = dir.path().join("storage");

    // The image: a gzip layer and a zstd layer; a bogus manifest for another platform.
    let base = layer(&[("etc/base", "from the gzip layer\n")]);
    let top = layer(&[("etc/top", "from the zstd layer\n")]);
    let (base_gz, top_zst) = (gzip(&base), zstd(&top));
    let other_arch = if arch() == "s390x" { "ppc64le" } else { "s390x" };
    let (app_digest, bogus_digest, index_digest);
    {
        let push_port = testkit::free_port();
        let _plain = DockerRegistry::start(&[], dir.path(), &storage, push_port, None);
        let p = Pusher::new(&format!("http://127.0.0.1:{push_port}"));
        let config = serde_json::to_vec(&json!({"architecture": arch(), "os": "linux", "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", images_support::sha256(&base)), format!("sha256:{}", images_support::sha256(&top))]}}))
        .expect("config");
        let config_digest = p.blob("test/app", &config);
        let l1 = p.blob("test/app", &base_gz);
        let l2 = p.blob("test/app", &top_zst);
        let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l1, "size": base_gz.len()},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": l2, "size": top_zst.len()},
        ]});
        let (d, size) = p.manifest("test/app", "1", OCI_MANIFEST, &manifest);
        app_digest = d;
        let bogus_config = serde_json::to_vec(&json!({"architecture": other_arch, "os": "linux"})).expect("json");
        let bogus_layer = b"not a tar at all".to_vec();
        let bc = p.blob("test/app", &bogus_config);
        let bl = p.blob("test/app", &bogus_layer);
        let bogus = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": bc, "size": bogus_config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": bl, "size": bogus_layer.len()}]});
        let (bd, bsize) = p.manifest("test/app", "bogus", OCI_MANIFEST, &bogus);
        bogus_digest = bd;
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": bogus_digest, "size": bsize, "platform": {"os": "linux", "architecture": other_arch}},
            {"mediaType": OCI_MANIFEST, "digest": app_digest, "size": size, "platform": {"os": "linux", "architecture": arch()}},
        ]});
        index_digest = p.manifest("test/app", "multi", OCI_INDEX, &index).0;
    }

    // The registry with token auth, and its token server.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let cert = rcgen::CertificateParams::new(vec!["skiff-token-issuer".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let bundle = dir.path().join("token-ca.pem");
    std::fs::write(&bundle, cert.pem()).expect("write the bundle");
    let signing = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &key.serialize_der(),
        &ring::rand::SystemRandom::new(),
    )
    .expect("signing key");
    let listener = TcpListener::bind("127.0.0.1:0").expect("token server port");
    let token_port = listener.local_addr().expect("addr").port();
    let tokens = Arc::new(AtomicUsize::new(0));
    let (cert_der, counter) = (cert.der().to_vec(), Arc::clone(&tokens));
    std::thread::spawn(move || token_server(listener, signing, cert_der, counter));
    let port = testkit::free_port();
    let auth = format!(
        "{{token: {{realm: \"http://127.0.0.1:{token_port}/token\", service: {SERVICE}, issuer: {ISSUER}, rootcertbundle: \"{}\"}}}}",
        bundle.display()
    );
    let reg = DockerRegistry::start(&[], dir.path(), &storage, port, Some(&auth));
    let name = format!("127.0.0.1:{port}/test/app");

    let store = ImageStore::open(&dir.path().join("store")).expect("store");
    let client = Registry::new(RegistriesFile::default(), store.clone());
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let alice = Some(Credentials::new(Some(USER), Some(PASSWORD), None, None));

    // Two pulls of one reference at once: one pull, both get its digest.
    let tagged = format!("{name}:1");
    let (a, b) =
        rt.block_on(async { tokio::join!(client.pull(&tagged, alice.clone()), client.pull(&tagged, alice.clone())) });
    assert_eq!(a.as_deref(), Ok(app_digest.as_str()), "{a:?}");
    assert_eq!(b.as_deref(), Ok(app_digest.as_str()), "{b:?}");
    assert_eq!(
        served(&reg.log, "/v2/test/app/manifests/1"),
        1,
        "concurrent pulls are one pull: {}",
        testkit::tail_of_file(&reg.log, 6)
    );
    assert!(tokens.load(Ordering::SeqCst) >= 1, "a token was fetched");
    let image = store.resolve(&format!("{name}:1")).expect("resolve").expect("the image is in the store");
    assert_eq!(image.manifest_digest, app_digest);
    assert_eq!(image.layers.len(), 2);

    // The layers unpack (gzip and zstd, as stored).
    let snaps = Snapshots::open(&dir.path().join("snapshots")).expect("snapshots");
    let dirs = snaps.prepare(&store, &image).expect("unpack the pulled layers");
    let read = |f: &str| dirs.iter().find_map(|d| std::fs::read_to_string(d.join(f)).ok());
    assert_eq!(read("etc/base").as_deref(), Some("from the gzip layer\n"));
    assert_eq!(read("etc/top").as_deref(), Some("from the zstd layer\n"));

    // The index gives this platform's manifest; its blobs are in the store already.
    let blob_gets = |log: &Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"GET /v2/test/app/blobs/"))
            .count()
    };
    let before = blob_gets(&reg.log);
    let multi = rt.block_on(client.pull(&format!("{name}:multi"), alice.clone()));
    assert_eq!(multi.as_deref(), Ok(app_digest.as_str()), "{multi:?} (index {index_digest}, bogus {bogus_digest})");
    assert_eq!(blob_gets(&reg.log), before, "no blob fetched again");
    assert!(!store.blob_path(&bogus_digest).exists(), "the other platform's manifest is not fetched");
    // By digest, the index's.
    let pinned = rt.block_on(client.pull(&format!("{name}@{index_digest}"), None.or(alice.clone())));
    assert_eq!(pinned.as_deref(), Ok(app_digest.as_str()));

    // A wrong password: the token server's answer.
    let wrong = Some(Credentials::new(Some(USER), Some("nope"), None, None));
    let err = rt.block_on(client.pull(&format!("{name}:bogus"), wrong)).expect_err("a wrong password fails");
    let msg = err.to_string();
    assert!(msg.contains("unauthorized: bad credentials for the token"), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    // No credentials: a token without access, and the registry's refusal.
    let err = rt.block_on(client.pull(&format!("{name}:bogus"), None)).expect_err("anonymous fails");
    let msg = err.to_string();
    assert!(msg.contains("unauthorized:") || msg.contains("denied:"), "{msg}");
    // A tag that does not exist: the registry's words.
    let err = rt.block_on(client.pull(&format!("{name}:nope"), alice)).expect_err("unknown tag");
    assert!(err.to_string().contains("manifest_unknown: manifest unknown"), "{err}");
    assert!(store.resolve(&format!("{name}:bogus")).expect("resolve").is_none());

    // Through the registries config: a registry that does not exist, whose mirrors are a closed
    // port (tried first, failing) and this registry (with a rewrite, and credentials from
    // `configs`).
    let closed = testkit::free_port();
    let config = RegistriesFile::parse(&format!(
        "mirrors:\n  nowhere.invalid:\n    endpoint: [\"http://127.0.0.1:{closed}\", \"127.0.0.1:{port}\"]\n    \
         rewrite: {{\"^myorg/(.*)\": \"test/$1\"}}\nconfigs:\n  \"127.0.0.1:{port}\":\n    auth: {{username: {USER}, password: {PASSWORD}}}\n"
    ))
    .expect("registries config");
    let store2 = ImageStore::open(&dir.path().join("store2")).expect("store");
    let mirrored = Registry::new(config, store2.clone());
    let got = rt.block_on(mirrored.pull("nowhere.invalid/myorg/app:1", None));
    assert_eq!(got.as_deref(), Ok(app_digest.as_str()), "{got:?}");
    assert!(store2.resolve("nowhere.invalid/myorg/app:1").expect("resolve").is_some(), "stored under the name pulled");
}
