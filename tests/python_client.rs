//! The official Python `kubernetes` client against skiff. The scripts live in `tests/python/`;
//! each runs against its own server and exits non-zero when a check fails.
//!
//! The interpreter is `$SKIFF_TEST_PYTHON`, else `<repo>/.venv/bin/python` (made by
//! `scripts/test`). A missing interpreter or package fails the test: it is never skipped.

mod common;

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{repo_root, Server};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn python() -> PathBuf {
    let p = std::env::var_os("SKIFF_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv").join("bin").join("python"));
    assert!(
        p.exists(),
        "Python interpreter {} not found. Run scripts/test (it creates .venv and installs the \
         `kubernetes` package) or set SKIFF_TEST_PYTHON to an interpreter that has it.",
        p.display()
    );
    let out = Command::new(&p)
        .args(["-c", "import kubernetes; print(kubernetes.__version__)"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", p.display()));
    assert!(
        out.status.success(),
        "{} cannot import the `kubernetes` package (pip install kubernetes into it, or run \
         scripts/test):\n{}",
        p.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    p
}

/// Run `tests/python/<script> <kubeconfig> [args]` and require exit status 0.
fn run_script(server: &Server, script: &str, args: &[&str]) {
    let py = python();
    let dir = repo_root().join("tests").join("python");
    let out_path = server.dir().join(format!("{script}.out"));
    let mut cmd = Command::new(&py);
    cmd.arg(dir.join(script))
        .arg(server.kubeconfig())
        .args(args)
        .current_dir(&dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONPATH", &dir)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env("NO_PROXY", "127.0.0.1")
        .env("HOME", server.dir())
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(out_path.with_extension("err")).unwrap());
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("spawn python");
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait python") {
            break Some(s);
        }
        if t0.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(out_path.with_extension("err")).unwrap_or_default();
    eprintln!("--- {script} stdout ---\n{stdout}");
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "python {script} failed ({s}) after {:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            t0.elapsed()
        ),
        None => panic!(
            "python {script} killed after {SCRIPT_TIMEOUT:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        ),
    }
}

#[test]
fn python_create_get_list_replace_patch_delete() {
    let server = Server::start();
    run_script(&server, "crud.py", &[]);
}

#[test]
fn python_watch_resumes_after_the_server_ends_it() {
    let server = Server::start_with(&["--min-request-timeout", "2"]);
    run_script(&server, "watch_resume.py", &["2"]);
}

#[test]
fn python_watch_relists_after_410() {
    let server = Server::start_with(&["--watch-history-seconds", "2"]);
    run_script(&server, "watch_relist.py", &["2"]);
}
