//! Exec and attach over WebSocket against the kubelet API and a fake runtime: subprotocol
//! negotiation (v5, v4), the channel framing (the empty first message, stdout, stdin with v5's
//! close, the status on channel 3, the close), exit codes as upstream's status, and the plain
//! answers before an upgrade.

mod server_harness;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use server_harness::{start_container, Kubelet};
use tokio_tungstenite::tungstenite::Message;

const V5_V4: &str = "v5.channel.k8s.io, v4.channel.k8s.io";

/// Every binary message until the server closes: (channel, data).
async fn frames<S>(ws: &mut S) -> Vec<(u8, Vec<u8>)>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut out = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message within 10s");
        match msg {
            Some(Ok(Message::Binary(b))) => {
                let (ch, data) = b.split_first().map(|(c, d)| (*c, d.to_vec())).expect("a channel byte");
                out.push((ch, data));
            }
            Some(Ok(Message::Close(_))) | None => return out,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("websocket error: {e}"),
        }
    }
}

fn channel(frames: &[(u8, Vec<u8>)], ch: u8) -> String {
    frames.iter().filter(|(c, _)| *c == ch).map(|(_, d)| String::from_utf8_lossy(d).into_owned()).collect()
}

fn status(frames: &[(u8, Vec<u8>)]) -> Value {
    serde_json::from_str(&channel(frames, 3)).expect("a JSON status on channel 3")
}

#[tokio::test]
async fn exec_over_v5_prints_and_succeeds() {
    let k = Kubelet::start().await;
    start_container(&k.rt, "default", "web", "main", 0).await;
    let path = "/exec/default/web/main?command=echo&command=hello&command=world&output=1&error=1";
    let (mut ws, resp) = k.ws(path, V5_V4).await.expect("upgrade");
    assert_eq!(resp.headers().get("sec-websocket-protocol").map(|v| v.as_bytes()), Some(&b"v5.channel.k8s.io"[..]));
    let got = frames(&mut ws).await;
    assert_eq!(got.first(), Some(&(1, Vec::new())), "an empty stdout message first: {got:?}");
    assert_eq!(channel(&got, 1), "hello world\n");
    assert_eq!(channel(&got, 2), "");
    assert_eq!(status(&got), serde_json::json!({"metadata": {}, "status": "Success"}));
    assert_eq!(got.last().map(|(c, _)| *c), Some(3), "the status is the last message");
}

#[tokio::test]
async fn a_non_zero_exit_is_upstreams_status() {
    let k = Kubelet::start().await;
    start_container(&k.rt, "default", "web", "main", 0).await;
    let (mut ws, _) =
        k.ws("/exec/default/web/main?command=sh&command=-c&command=exit%203&output=1", V5_V4).await.expect("upgrade");
    let s = status(&frames(&mut ws).await);
    assert_eq!(s["status"], "Failure");
    assert_eq!(s["reason"], "NonZeroExitCode");
    assert_eq!(s["details"]["causes"][0], serde_json::json!({"reason": "ExitCode", "message": "3"}));

    let (mut ws, _) = k.ws("/exec/default/web/main?command=nosuch&output=1&error=1", V5_V4).await.expect("upgrade");
    let got = frames(&mut ws).await;
    assert!(channel(&got, 2).contains("executable file not found"), "{got:?}");
    assert_eq!(status(&got)["details"]["causes"][0]["message"], "127");
}

#[tokio::test]
async fn stdin_flows_and_v5_closes_it() {
    let k = Kubelet::start().await;
    start_container(&k.rt, "default", "web", "main", 0).await;
    let (mut ws, _) = k.ws("/exec/default/web/main?command=cat&input=1&output=1", V5_V4).await.expect("upgrade");
    ws.send(Message::Binary(vec![0, b'p', b'i', b'n', b'g', b'\n'].into())).await.expect("stdin");
    ws.send(Message::Binary(
        vec![4].into_iter().chain(br#"{"Width":80,"Height":24}"#.iter().copied()).collect::<Vec<u8>>().into(),
    ))
    .await
    .expect("resize");
    ws.send(Message::Binary(vec![255, 0].into())).await.expect("close stdin");
    let got = frames(&mut ws).await;
    assert_eq!(channel(&got, 1), "ping\n");
    assert_eq!(status(&got)["status"], "Success");
}

#[tokio::test]
async fn v4_is_spoken_too() {
    let k = Kubelet::start().await;
    start_container(&k.rt, "default", "web", "main", 0).await;
    let (mut ws, resp) =
        k.ws("/exec/default/web/main?command=echo&command=v4&output=1", "v4.channel.k8s.io").await.expect("upgrade");
    assert_eq!(resp.headers().get("sec-websocket-protocol").map(|v| v.as_bytes()), Some(&b"v4.channel.k8s.io"[..]));
    let got = frames(&mut ws).await;
    assert_eq!(channel(&got, 1), "v4\n");
    assert_eq!(status(&got)["status"], "Success");
}

#[tokio::test]
async fn attach_answers_that_the_runtime_cannot() {
    let k = Kubelet::start().await;
    start_container(&k.rt, "default", "web", "main", 0).await;
    let (mut ws, _) = k.ws("/attach/default/web/main?output=1", V5_V4).await.expect("upgrade");
    let s = status(&frames(&mut ws).await);
    assert_eq!(s["reason"], "InternalError");
    assert!(s["message"].as_str().is_some_and(|m| m.contains("attach is not supported")), "{s}");
}

#[tokio::test]
async fn refusals_before_the_upgrade() {
    let k = Kubelet::start().await;
    let id = start_container(&k.rt, "default", "web", "main", 0).await;
    let http_err = |e: tokio_tungstenite::tungstenite::Error| match e {
        tokio_tungstenite::tungstenite::Error::Http(resp) => {
            (resp.status().as_u16(), String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned())
        }
        other => panic!("expected an HTTP answer, got {other}"),
    };
    let e = k.ws("/exec/default/web/main?command=ls", V5_V4).await.expect_err("no streams");
    assert_eq!(http_err(e), (400, "you must specify at least 1 of stdin, stdout, stderr".to_string()));
    let e = k.ws("/exec/default/nopod/main?command=ls&output=1", V5_V4).await.expect_err("no pod");
    assert_eq!(http_err(e), (404, "pod does not exist".to_string()));
    let e = k.ws("/exec/default/web/other?command=ls&output=1", V5_V4).await.expect_err("no container");
    assert_eq!(http_err(e), (500, "container not found (\"other\")".to_string()));
    let e = k.ws("/exec/default/web/main?command=ls&output=1", "base64.channel.k8s.io").await.expect_err("protocol");
    assert_eq!(http_err(e).0, 400);
    // Not a WebSocket (an SPDY client): refused after the checks.
    let (code, body) = k.get("/exec/default/web/main?command=ls&output=1").await;
    assert_eq!(code, 400);
    assert!(body.contains("WebSocket"), "{body}");
    kubelet::runtime::Runtime::stop_container(&k.rt, &id, Duration::ZERO).await.expect("stop");
    let e = k.ws("/exec/default/web/main?command=ls&output=1", V5_V4).await.expect_err("exited");
    assert_eq!(http_err(e), (500, "container is in CONTAINER_EXITED state".to_string()));
}
