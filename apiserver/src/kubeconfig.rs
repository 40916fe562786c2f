//! The admin kubeconfig at `<data-dir>/kubeconfig.yaml`.

use std::path::Path;

use base64::Engine;

use crate::files;

/// Renders a kubeconfig for `server` that trusts `ca_pem` and presents `token`.
pub fn render(server: &str, ca_pem: &str, token: &str, user: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: skiff\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: skiff\n  context:\n    cluster: skiff\n    user: {user}\n    namespace: default\ncurrent-context: skiff\npreferences: {{}}\n"
    )
}

/// Writes the kubeconfig atomically with mode 0600.
pub fn write(path: &Path, server: &str, ca_pem: &str, token: &str, user: &str) -> Result<(), files::FileError> {
    files::write_atomic(path, render(server, ca_pem, token, user).as_bytes(), 0o600)
}
