//! Crash safety: concurrent writers create and update ConfigMaps while the server is killed with
//! SIGKILL at a random moment, then it restarts on the same data dir. Over 20 rounds: the store
//! opens every time, every acknowledged (2xx) write is present with exactly its content, nothing
//! that was never sent appears, and resourceVersions never go backwards.

mod common;

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use common::{Api, Server};
use rand::Rng;
use serde_json::{json, Value};

const ROUNDS: usize = 20;
const WRITERS: usize = 4;
const NAMES_PER_WRITER: usize = 4;
/// Bounds on one round's write loop (the kill normally ends it much sooner).
const MAX_OPS_PER_WRITER: usize = 5_000;
const MAX_ROUND: Duration = Duration::from_secs(15);
const CMS: &str = "/api/v1/namespaces/default/configmaps";

/// What the test knows about one ConfigMap.
#[derive(Clone, Debug, Default)]
struct Entry {
    /// Content of the last write that was answered 2xx.
    acked: Option<String>,
    /// Content of a write that was sent but not answered (the server died): it may or may not
    /// have been applied.
    pending: Option<String>,
    /// resourceVersion of the stored object, for the next PUT.
    rv: Option<String>,
}

struct WriterResult {
    entries: Vec<Entry>,
    acked: usize,
    max_rv: u64,
    errors: Vec<String>,
}

fn name(writer: usize, i: usize) -> String {
    format!("crash-{writer}-{i}")
}

fn rv_num(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("resourceVersion must be an integer string: {v}"))
}

fn writer(api: Api, w: usize, round: usize, mut entries: Vec<Entry>) -> WriterResult {
    let mut rng = rand::rng();
    let deadline = Instant::now() + MAX_ROUND;
    let mut res = WriterResult { entries: Vec::new(), acked: 0, max_rv: 0, errors: Vec::new() };
    for op in 0..MAX_OPS_PER_WRITER {
        if Instant::now() > deadline {
            break;
        }
        let i = rng.random_range(0..NAMES_PER_WRITER);
        let e = &mut entries[i];
        let pad = "x".repeat(rng.random_range(0..3000));
        let content = format!("w{w}-n{i}-r{round}-op{op}-{pad}");
        let n = name(w, i);
        let mut obj = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": n, "labels": {"crash": "1"}},
            "data": {"v": content}
        });
        e.pending = Some(content.clone());
        let resp = match (&e.acked, &e.rv) {
            (Some(_), Some(rv)) => {
                obj["metadata"]["resourceVersion"] = json!(rv);
                api.try_send(
                    "PUT",
                    &format!("{CMS}/{n}"),
                    Some("application/json"),
                    Some(serde_json::to_vec(&obj).unwrap()),
                )
            }
            _ => api.try_send("POST", CMS, Some("application/json"), Some(serde_json::to_vec(&obj).unwrap())),
        };
        match resp {
            // The server is gone: this write stays pending.
            Err(_) => break,
            Ok(r) if (200..300).contains(&r.status) => {
                let stored: Value = match serde_json::from_slice(&r.body) {
                    Ok(v) => v,
                    Err(err) => {
                        res.errors.push(format!("{n}: 2xx with a body that is not JSON: {err}"));
                        break;
                    }
                };
                if stored["data"]["v"] != json!(content) {
                    res.errors.push(format!("{n}: the 2xx response does not carry the written content"));
                }
                let rv = rv_num(&stored);
                res.max_rv = res.max_rv.max(rv);
                e.acked = Some(content);
                e.pending = None;
                e.rv = Some(rv.to_string());
                res.acked += 1;
            }
            Ok(r) => {
                res.errors.push(format!("{n}: unexpected HTTP {} while the server was up: {}", r.status, r.text()));
                break;
            }
        }
    }
    res.entries = entries;
    res
}

/// Compare the store with the model; promote pending writes that turned out to be applied.
/// Returns the errors and the list's resourceVersion.
fn verify(api: &Api, model: &mut [Vec<Entry>], max_rv: u64, round: usize) -> (Vec<String>, u64) {
    let mut errors = Vec::new();
    let list = api.get_json(&format!("{CMS}?labelSelector=crash%3D1"));
    let list_rv: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("list without an integer resourceVersion: {}", list["metadata"]));
    if list_rv < max_rv {
        errors.push(format!(
            "round {round}: after restart the list resourceVersion {list_rv} is below an acknowledged write's {max_rv}"
        ));
    }
    let mut stored: BTreeMap<String, Value> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| (i["metadata"]["name"].as_str().unwrap_or_default().to_string(), i.clone()))
        .collect();
    for (w, entries) in model.iter_mut().enumerate() {
        for (i, e) in entries.iter_mut().enumerate() {
            let n = name(w, i);
            let got = stored.remove(&n);
            let content = got.as_ref().and_then(|o| o["data"]["v"].as_str().map(str::to_string));
            match (&got, &content) {
                (None, _) => {
                    if e.acked.is_some() {
                        errors.push(format!("round {round}: {n} was acknowledged but is missing after the restart"));
                    }
                    e.pending = None;
                }
                (Some(obj), Some(c)) => {
                    if Some(c) == e.acked.as_ref() {
                        e.pending = None;
                    } else if Some(c) == e.pending.as_ref() {
                        // Applied but not acknowledged: durable now, so it is the new baseline.
                        e.acked = e.pending.take();
                    } else {
                        let short = |s: Option<&String>| s.map(|s| s.chars().take(40).collect::<String>());
                        errors.push(format!(
                            "round {round}: {n} holds {:?}…, expected the acknowledged {:?}… or the in-flight {:?}…",
                            short(Some(c)),
                            short(e.acked.as_ref()),
                            short(e.pending.as_ref())
                        ));
                        e.acked = Some(c.clone());
                        e.pending = None;
                    }
                    e.rv = Some(rv_num(obj).to_string());
                }
                (Some(obj), None) => {
                    errors.push(format!("round {round}: {n} lost its data: {obj}"));
                }
            }
        }
    }
    for n in stored.keys() {
        errors.push(format!("round {round}: unexpected object {n} in the store"));
    }
    (errors, list_rv)
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let t0 = Instant::now();
    let mut server = Server::start();
    let mut model: Vec<Vec<Entry>> = vec![vec![Entry::default(); NAMES_PER_WRITER]; WRITERS];
    let mut rng = rand::rng();
    let mut max_rv = 0u64;
    let mut total_acked = 0usize;
    let mut errors: Vec<String> = Vec::new();

    for round in 0..ROUNDS {
        let handles: Vec<_> = model
            .iter()
            .enumerate()
            .map(|(w, entries)| {
                let api = server.api();
                let entries = entries.clone();
                thread::spawn(move || writer(api, w, round, entries))
            })
            .collect();

        // Kill at a random moment of the writes (the crash point is what the test varies).
        thread::sleep(Duration::from_millis(rng.random_range(50..600)));
        let pid = server.pid();
        server.kill();

        let mut round_rv = 0;
        for (w, h) in handles.into_iter().enumerate() {
            let r = h.join().expect("writer thread panicked");
            model[w] = r.entries;
            total_acked += r.acked;
            round_rv = round_rv.max(r.max_rv);
            errors.extend(r.errors);
        }
        if round_rv > 0 && round_rv <= max_rv {
            errors.push(format!(
                "round {round}: resourceVersions went backwards after a restart: {round_rv} <= {max_rv}"
            ));
        }
        max_rv = max_rv.max(round_rv);

        server.restart();
        let api = server.api();
        let (errs, list_rv) = verify(&api, &mut model, max_rv, round);
        errors.extend(errs);
        // Writes after this restart must get resourceVersions above everything stored now.
        max_rv = max_rv.max(list_rv);
        if !errors.is_empty() {
            panic!(
                "after round {round} (server pid {pid:?} killed):\n{}\n--- server log tail ---\n{}",
                errors.join("\n"),
                server.log_tail(40)
            );
        }
    }
    eprintln!(
        "crash test: {ROUNDS} kill -9 rounds, {total_acked} acknowledged writes, max resourceVersion {max_rv}, {:?}",
        t0.elapsed()
    );
    assert!(total_acked >= ROUNDS * 5, "too few acknowledged writes ({total_acked}) for the test to mean anything");
}
