//! The channel protocol of exec and attach over WebSocket (k8s.io/apimachinery
//! `pkg/util/remotecommand`, k8s.io/apiserver `pkg/util/wsstream`): every binary message starts
//! with a channel byte — 0 stdin, 1 stdout, 2 stderr, 3 the final status, 4 terminal resizes —
//! followed by the data. `v5.channel.k8s.io` adds channel 255: `[255, n]` closes the client's
//! stream `n` (stdin), since a WebSocket cannot half-close. `v4.channel.k8s.io` and later send
//! the status as a JSON `metav1.Status`; the older `channel.k8s.io` (or no subprotocol) sends
//! only a failure's message. Pure: no I/O here.

use serde_json::{json, Value};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5: "close the stream named by the next byte".
pub const CLOSE: u8 = 255;

/// The subprotocols this server speaks, in its order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V5,
    V4,
    /// `channel.k8s.io`, or a client that named no subprotocol.
    V1,
}

impl Protocol {
    pub const V5_NAME: &'static str = "v5.channel.k8s.io";
    pub const V4_NAME: &'static str = "v4.channel.k8s.io";
    pub const V1_NAME: &'static str = "channel.k8s.io";

    /// What goes in `Sec-WebSocket-Protocol` (nothing for a client that offered none).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V5 => Self::V5_NAME,
            Protocol::V4 => Self::V4_NAME,
            Protocol::V1 => Self::V1_NAME,
        }
    }

    /// The first subprotocol the client offers that this server speaks (as wsstream picks it);
    /// a client offering none gets the plain channel protocol.
    pub fn negotiate(offered: &[&str]) -> Option<Protocol> {
        if offered.is_empty() {
            return Some(Protocol::V1);
        }
        offered.iter().find_map(|p| match p.trim() {
            Self::V5_NAME => Some(Protocol::V5),
            Self::V4_NAME => Some(Protocol::V4),
            Self::V1_NAME => Some(Protocol::V1),
            _ => None,
        })
    }

    /// The subprotocols a `Sec-WebSocket-Protocol` header lists.
    pub fn offered(header: &str) -> Vec<&str> {
        header.split(',').map(str::trim).filter(|p| !p.is_empty()).collect()
    }
}

/// A message on `channel`.
pub fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    out
}

/// A terminal size (`remotecommand.TerminalSize`, JSON with Go's field names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct TerminalSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// What a client's message means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromClient<'a> {
    Stdin(&'a [u8]),
    Resize(TerminalSize),
    /// v5: the client closed its side of a stream (0: stdin).
    Close(u8),
    /// Empty, on a channel the server does not read, or a resize that does not parse.
    Ignored,
}

/// Decodes one binary message from the client.
pub fn decode(protocol: Protocol, msg: &[u8]) -> FromClient<'_> {
    let Some((&channel, data)) = msg.split_first() else { return FromClient::Ignored };
    match channel {
        STDIN => FromClient::Stdin(data),
        RESIZE => serde_json::from_slice(data).map(FromClient::Resize).unwrap_or(FromClient::Ignored),
        CLOSE if protocol == Protocol::V5 => match data {
            [stream] => FromClient::Close(*stream),
            _ => FromClient::Ignored,
        },
        _ => FromClient::Ignored,
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// It exited with a non-zero code; `command` is what ran.
    Exited {
        code: i32,
        command: Vec<String>,
    },
    /// It could not run (upstream answers an internal error).
    Failed(String),
}

/// The `metav1.Status` the error channel carries (v4 and later), as upstream's kubelet writes
/// it (`v4WriteStatusFunc` with the statuses of `ServeExec`).
pub fn status(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Success => json!({"metadata": {}, "status": "Success"}),
        Outcome::Exited { code, command } => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                command.join(" ")
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Outcome::Failed(message) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("Internal error occurred: {message}"),
            "reason": "InternalError",
            "details": {"causes": [{"message": message}]},
            "code": 500,
        }),
    }
}

/// The status message for `protocol`, if it sends one (v1 sends nothing on success).
pub fn status_frame(protocol: Protocol, outcome: &Outcome) -> Option<Vec<u8>> {
    match protocol {
        Protocol::V5 | Protocol::V4 => Some(frame(ERROR, status(outcome).to_string().as_bytes())),
        Protocol::V1 => status(outcome).get("message").and_then(Value::as_str).map(|m| frame(ERROR, m.as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_the_first_offered_known_subprotocol() {
        assert_eq!(Protocol::negotiate(&["v5.channel.k8s.io", "v4.channel.k8s.io"]), Some(Protocol::V5));
        assert_eq!(Protocol::negotiate(&["v4.channel.k8s.io", "v5.channel.k8s.io"]), Some(Protocol::V4));
        assert_eq!(
            Protocol::negotiate(&["v3.channel.k8s.io", "base64.channel.k8s.io", "channel.k8s.io"]),
            Some(Protocol::V1)
        );
        assert_eq!(Protocol::negotiate(&["base64.channel.k8s.io"]), None);
        assert_eq!(Protocol::negotiate(&[]), Some(Protocol::V1));
        assert_eq!(
            Protocol::offered(" v5.channel.k8s.io, v4.channel.k8s.io,"),
            ["v5.channel.k8s.io", "v4.channel.k8s.io"]
        );
    }

    #[test]
    fn frames_carry_the_channel_byte_first() {
        assert_eq!(frame(STDOUT, b"hi\n"), [1, b'h', b'i', b'\n']);
        assert_eq!(frame(STDERR, b""), [2]);
        assert_eq!(decode(Protocol::V5, &[0, b'l', b's', b'\n']), FromClient::Stdin(b"ls\n"));
        assert_eq!(decode(Protocol::V4, &[0]), FromClient::Stdin(b""));
        assert_eq!(decode(Protocol::V4, &[]), FromClient::Ignored);
        assert_eq!(decode(Protocol::V4, &[1, b'x']), FromClient::Ignored);
    }

    #[test]
    fn resize_messages_are_go_json() {
        let msg = frame(RESIZE, br#"{"Width":120,"Height":40}"#);
        assert_eq!(decode(Protocol::V5, &msg), FromClient::Resize(TerminalSize { width: 120, height: 40 }));
        assert_eq!(decode(Protocol::V5, &frame(RESIZE, b"{bad")), FromClient::Ignored);
    }

    #[test]
    fn v5_closes_streams_and_v4_does_not() {
        assert_eq!(decode(Protocol::V5, &[255, 0]), FromClient::Close(0));
        assert_eq!(decode(Protocol::V5, &[255]), FromClient::Ignored);
        assert_eq!(decode(Protocol::V5, &[255, 0, 1]), FromClient::Ignored);
        assert_eq!(decode(Protocol::V4, &[255, 0]), FromClient::Ignored);
    }

    #[test]
    fn statuses_are_upstreams() {
        assert_eq!(status(&Outcome::Success).to_string(), r#"{"metadata":{},"status":"Success"}"#);
        let exited = status(&Outcome::Exited { code: 3, command: vec!["sh".into(), "-c".into(), "exit 3".into()] });
        assert_eq!(
            exited.to_string(),
            concat!(
                r#"{"metadata":{},"status":"Failure","#,
                r#""message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","#,
                r#""reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
            )
        );
        let failed = status(&Outcome::Failed("boom".into()));
        assert_eq!(failed["reason"], "InternalError");
        assert_eq!(failed["message"], "Internal error occurred: boom");
        assert_eq!(failed["code"], 500);
    }

    #[test]
    fn status_frames_per_protocol() {
        let ok = status_frame(Protocol::V5, &Outcome::Success).expect("v5 sends success");
        assert_eq!(ok[0], ERROR);
        assert_eq!(&ok[1..], br#"{"metadata":{},"status":"Success"}"#);
        assert_eq!(status_frame(Protocol::V1, &Outcome::Success), None);
        let v1 = status_frame(Protocol::V1, &Outcome::Failed("boom".into())).expect("v1 sends failures");
        assert_eq!(&v1[1..], b"Internal error occurred: boom");
    }
}
