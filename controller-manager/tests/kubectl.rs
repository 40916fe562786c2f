//! The real kubectl against a test server running the Deployment and ReplicaSet controllers:
//! `rollout status` finishes, `rollout undo` goes back, `rollout restart` rolls out again.

mod support;

use support::deploy::*;

/// The real kubectl, with its own HOME and discovery cache in a temp dir.
struct Kubectl {
    kubeconfig: std::path::PathBuf,
    home: tempfile::TempDir,
}

impl Kubectl {
    async fn run(&self, args: &[&str]) -> (bool, String) {
        let out = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.home.path().join("cache"))
            .env("HOME", self.home.path())
            .args(args)
            .output()
            .await
            .expect("run kubectl");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed:\n{text}");
        text
    }
}

const MANIFEST: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: img:1
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_undo_and_restart() {
    let server = start_deploy().await;
    let client = server.client.clone();
    let _kubelet = kubelet(&client, "default");
    let k = Kubectl { kubeconfig: server.kubeconfig().to_path_buf(), home: tempfile::tempdir().unwrap() };
    let manifest = server.dir().join("web.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();

    k.ok(&["apply", "-f", manifest.to_str().unwrap()]).await;
    let out = k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]).await;
    assert!(out.contains("successfully rolled out"), "{out}");

    k.ok(&["set", "image", "deploy/web", "c=img:2"]).await;
    let out = k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]).await;
    assert!(out.contains("successfully rolled out"), "{out}");

    let out = k.ok(&["rollout", "undo", "deploy/web"]).await;
    assert!(out.contains("rolled back"), "{out}");
    k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]).await;
    let image = k.ok(&["get", "deploy/web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).await;
    assert_eq!(image.trim(), "img:1");
    let rs = k.ok(&["get", "rs", "-o", "jsonpath={range .items[*]}{.metadata.annotations.deployment\\.kubernetes\\.io/revision} {.spec.template.spec.containers[0].image} {.spec.replicas}{\"\\n\"}{end}"]).await;
    let mut lines: Vec<&str> = rs.lines().collect();
    lines.sort();
    assert_eq!(lines, vec!["2 img:2 0", "3 img:1 3"], "undo reuses the first ReplicaSet as revision 3");

    k.ok(&["rollout", "restart", "deploy/web"]).await;
    k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]).await;
    let history = k.ok(&["rollout", "history", "deploy/web"]).await;
    for rev in ["2", "3", "4"] {
        assert!(history.lines().any(|l| l.trim_start().starts_with(rev)), "revision {rev} in:\n{history}");
    }
    let events = k.ok(&["get", "events", "--field-selector", "involvedObject.kind=Deployment"]).await;
    assert!(events.contains("ScalingReplicaSet"), "{events}");
}
