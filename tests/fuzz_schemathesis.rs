//! Schemathesis over the OpenAPI v3 documents the server serves: a bounded, seeded fuzz run
//! against a throwaway server (`tests/fuzz/schemathesis_run.py` does the fuzzing and the
//! per-response checks; see its docstring).
//!
//! Fails on a crash (the process exits, or stops answering), on any 500 or 502, on any 5xx
//! without a JSON `Status` body, on a 503/504/429 without the reason the API defines for it
//! (ServiceUnavailable; Timeout with cause ResourceVersionTooLarge; TooManyRequests with a
//! Retry-After header), on a dropped connection or a hang (watches excepted), and when the server
//! does not answer `GET /api/v1/namespaces/default` within a second after the run.
//!
//! The interpreter is `$SKIFF_TEST_FUZZ_PYTHON` (`scripts/test` makes `.venv-fuzz` from
//! `tests/fuzz/requirements.txt` and exports it), else `<repo>/.venv-fuzz/bin/python`. A missing
//! interpreter or package fails the test: it is never skipped.
//!
//! Knobs (environment): `SKIFF_FUZZ_SEED` (default fixed in the driver), `SKIFF_FUZZ_BUDGET`
//! (seconds of fuzzing, default 140), `SKIFF_FUZZ_MAX_EXAMPLES` (cases per operation and mode).

mod common;

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{repo_root, Server};

/// Seconds of fuzzing the driver may spend (it stops starting new cases after that).
const DEFAULT_BUDGET_SECS: u64 = 140;
/// Past the budget: loading the documents, the checks after the run, interpreter start.
const DRIVER_GRACE: Duration = Duration::from_secs(30);

fn fuzz_python() -> PathBuf {
    let p = std::env::var_os("SKIFF_TEST_FUZZ_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-fuzz").join("bin").join("python"));
    assert!(
        p.exists(),
        "fuzz interpreter {} not found. Run scripts/test (it creates .venv-fuzz from \
         tests/fuzz/requirements.txt and exports SKIFF_TEST_FUZZ_PYTHON), or set \
         SKIFF_TEST_FUZZ_PYTHON to a Python that has those packages.",
        p.display()
    );
    let out = Command::new(&p)
        .args(["-c", "import schemathesis, hypothesis, requests; print(schemathesis.__version__)"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", p.display()));
    assert!(
        out.status.success(),
        "{} cannot import schemathesis (pip install -r tests/fuzz/requirements.txt into it, or run \
         scripts/test):\n{}",
        p.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    p
}

#[test]
fn schemathesis_over_served_openapi() {
    let py = fuzz_python();
    let mut server = Server::start();
    let creds = server.creds().clone();
    let ca = server.dir().join("fuzz-ca.pem");
    fs::write(&ca, &creds.ca_pem).expect("write CA");
    let token = server.dir().join("fuzz-token");
    fs::write(&token, &creds.token).expect("write token");
    let report = server.dir().join("fuzz-report.json");
    let out_path = server.dir().join("fuzz.out");
    let work = server.dir().join("fuzz-work");
    fs::create_dir_all(&work).expect("create fuzz work dir");

    let budget: u64 =
        std::env::var("SKIFF_FUZZ_BUDGET").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_BUDGET_SECS);
    let script = repo_root().join("tests").join("fuzz").join("schemathesis_run.py");
    let mut cmd = Command::new(&py);
    cmd.arg(&script)
        .arg("--url")
        .arg(&creds.server)
        .arg("--ca")
        .arg(&ca)
        .arg("--token-file")
        .arg(&token)
        .arg("--budget")
        .arg(budget.to_string())
        .arg("--report")
        .arg(&report);
    if let Ok(seed) = std::env::var("SKIFF_FUZZ_SEED") {
        cmd.arg("--seed").arg(seed);
    }
    if let Ok(n) = std::env::var("SKIFF_FUZZ_MAX_EXAMPLES") {
        cmd.arg("--max-examples").arg(n);
    }
    // The driver's own cwd (Hypothesis may keep files there), no proxy, no CA bundle from the
    // environment, no bytecode in the repository.
    cmd.current_dir(&work)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("HOME", server.dir())
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .env("NO_PROXY", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create driver output"))
        .stderr(File::create(out_path.with_extension("err")).expect("create driver stderr"));

    let hard_limit = Duration::from_secs(budget) + DRIVER_GRACE;
    let t0 = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", py.display()));
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the fuzz driver") {
            break Some(s);
        }
        if t0.elapsed() > hard_limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let elapsed = t0.elapsed();
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(out_path.with_extension("err")).unwrap_or_default();
    eprintln!("--- fuzz driver output ({elapsed:.1?}) ---\n{stdout}");
    if !stderr.trim().is_empty() {
        let tail: Vec<&str> = stderr.lines().collect();
        eprintln!("--- fuzz driver stderr (tail) ---\n{}", tail[tail.len().saturating_sub(60)..].join("\n"));
    }

    // The server must have survived whatever the driver says, and still answer promptly.
    assert!(
        server.is_running(),
        "the skiff server process exited during the fuzz run\n--- server log tail ---\n{}",
        server.log_tail(80)
    );
    let api = common::Api::new(&creds, Some(&creds.token), Duration::from_secs(1));
    let probe = Instant::now();
    match api.try_get("/api/v1/namespaces/default") {
        Ok(r) => assert_eq!(
            r.status,
            200,
            "GET /api/v1/namespaces/default after the fuzz run answered {}: {}",
            r.status,
            r.text()
        ),
        Err(e) => panic!("GET /api/v1/namespaces/default after the fuzz run failed ({:?}): {e}", probe.elapsed()),
    }

    match status {
        None => panic!(
            "the fuzz driver did not finish within {hard_limit:?} (budget {budget}s); it was killed. \
             Output above."
        ),
        Some(s) if s.success() => {}
        Some(s) if s.code() == Some(1) => panic!(
            "the fuzz run found server defects (exit {s}); each distinct finding with a reproduction \
             is in the summary above (JSON report: {})",
            report.display()
        ),
        Some(s) => panic!("the fuzz driver itself failed (exit {s}); see its output above"),
    }
}
