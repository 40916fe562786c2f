//! The kubelet API's authentication and `/containerLogs` over real TLS, against a fake runtime:
//! CRI records turned into plain output (partial lines joined, timestamps, tail, since,
//! limitBytes, previous), upstream's errors, and a follow that streams until the container exits.

mod server_harness;

use std::time::Duration;

use futures::StreamExt;
use http_body_util::BodyExt;
use server_harness::{start_container, Kubelet};

const LOGS: &str = "/containerLogs/default/web/main";

/// Writes the test's log lines (the fake already wrote its `started` line).
fn write_lines(k: &Kubelet, id: &str) {
    for line in [
        "2024-05-01T10:00:00.000000001Z stdout P a long line, ",
        "2024-05-01T10:00:00.000000002Z stdout F in two parts",
        "2024-05-01T10:00:01Z stderr F to stderr",
        "2024-05-01T10:00:02.5Z stdout F last",
    ] {
        k.rt.write_log(id, line).expect("write log");
    }
}

#[tokio::test]
async fn authentication_needs_a_certificate_from_the_cluster_ca() {
    let k = Kubelet::start().await;
    start_container(&k.rt, "default", "web", "main", 0).await;
    assert_eq!(k.get_as("/healthz", None).await, (200, "ok".to_string()), "/healthz is open");
    assert_eq!(k.get_as(LOGS, None).await, (401, "Unauthorized".to_string()));
    assert_eq!(k.get_as(LOGS, Some(&k.stranger.clone())).await, (401, "Unauthorized".to_string()));
    assert_eq!(k.get(LOGS).await.0, 200);
    assert_eq!(k.get("/nothing/here").await.0, 404);
}

#[tokio::test]
async fn logs_are_converted_as_upstream_does() {
    let k = Kubelet::start().await;
    let id = start_container(&k.rt, "default", "web", "main", 0).await;
    write_lines(&k, &id);

    let (code, body) = k.get(LOGS).await;
    assert_eq!(code, 200);
    assert_eq!(body, "skiff-fake: started\na long line, in two parts\nto stderr\nlast\n");

    assert_eq!(k.get(&format!("{LOGS}?tailLines=2")).await.1, "to stderr\nlast\n");
    assert_eq!(k.get(&format!("{LOGS}?tail=1")).await.1, "last\n", "the old `tail` parameter");
    assert_eq!(k.get(&format!("{LOGS}?tailLines=0")).await.1, "");
    assert_eq!(k.get(&format!("{LOGS}?limitBytes=15")).await.1, "skiff-fake: sta");
    // The fake's own line carries the time it started, after every line written here.
    let since = k.get(&format!("{LOGS}?sinceTime=2024-05-01T10:00:01Z")).await.1;
    assert_eq!(since, "skiff-fake: started\nto stderr\nlast\n");
    assert_eq!(k.get(&format!("{LOGS}?sinceSeconds=60")).await.1, "skiff-fake: started\n");
    let (_, stamped) = k.get(&format!("{LOGS}?timestamps=true&tailLines=3")).await;
    assert_eq!(
        stamped,
        "2024-05-01T10:00:00.000000002Z in two parts\n\
         2024-05-01T10:00:01.000000000Z to stderr\n\
         2024-05-01T10:00:02.500000000Z last\n"
    );
}

#[tokio::test]
async fn previous_is_the_attempt_before_the_current_one() {
    let k = Kubelet::start().await;
    let first = start_container(&k.rt, "default", "web", "main", 0).await;
    let (code, body) = k.get(&format!("{LOGS}?previous=true")).await;
    assert_eq!((code, body.as_str()), (400, "previous terminated container \"main\" in pod \"web\" not found"));
    k.rt.write_log(&first, "2024-05-01T10:00:00Z stdout F from the first attempt").expect("write");
    kubelet::runtime::Runtime::stop_container(&k.rt, &first, Duration::ZERO).await.expect("stop");
    let second = start_container(&k.rt, "default", "web", "main", 1).await;
    k.rt.write_log(&second, "2024-05-01T10:01:00Z stdout F from the second attempt").expect("write");
    let (_, previous) = k.get(&format!("{LOGS}?previous=true")).await;
    assert!(previous.contains("from the first attempt") && previous.contains("exited with code 0"), "{previous}");
    let (_, current) = k.get(LOGS).await;
    assert_eq!(current, "skiff-fake: started\nfrom the second attempt\n");
}

#[tokio::test]
async fn errors_are_upstreams() {
    let k = Kubelet::start().await;
    start_container(&k.rt, "default", "web", "main", 0).await;
    let (code, body) = k.get("/containerLogs/default/web/other").await;
    assert_eq!(
        (code, body.as_str()),
        (400, "container \"other\" in pod \"web\" is waiting to start: ContainerCreating")
    );
    let (code, _) = k.get("/containerLogs/default/nopod/main").await;
    assert_eq!(code, 400, "a pod without a sandbox has not started yet");
    assert_eq!(k.get(&format!("{LOGS}?tailLines=-1")).await, (422, r#"{"message": "Invalid request."}"#.to_string()));
    assert_eq!(
        k.get(&format!("{LOGS}?tailLines=x")).await,
        (400, r#"{"message": "Unable to decode query."}"#.to_string())
    );
    assert_eq!(k.get(&format!("{LOGS}?sinceSeconds=1&sinceTime=2024-05-01T10:00:00Z")).await.0, 422);
}

#[tokio::test]
async fn follow_streams_new_lines_until_the_container_exits() {
    let k = Kubelet::start().await;
    let id = start_container(&k.rt, "default", "web", "main", 0).await;
    let resp = k.get_stream(&format!("{LOGS}?follow=true"), Some(&k.trusted.clone())).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body().into_data_stream();
    let mut seen = String::new();
    assert!(next_chunk(&mut body, &mut seen).await);
    assert_eq!(seen, "skiff-fake: started\n", "what was there arrives first");
    k.rt.write_log(&id, "2024-05-01T10:00:00Z stdout F one more").expect("write");
    assert!(next_chunk(&mut body, &mut seen).await);
    assert_eq!(seen, "skiff-fake: started\none more\n", "a new line arrives while the read is open");
    kubelet::runtime::Runtime::stop_container(&k.rt, &id, Duration::ZERO).await.expect("stop");
    while next_chunk(&mut body, &mut seen).await {}
    assert!(seen.ends_with("skiff-fake: exited with code 0\n"), "the stream ends with the container: {seen}");
}

/// Appends the next chunk of a streaming body to `seen`; false at its end.
async fn next_chunk<S, E>(body: &mut S, seen: &mut String) -> bool
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Debug,
{
    let chunk = tokio::time::timeout(Duration::from_secs(10), body.next()).await.expect("a chunk within 10s");
    match chunk {
        Some(c) => {
            seen.push_str(&String::from_utf8_lossy(&c.expect("chunk")));
            true
        }
        None => false,
    }
}
