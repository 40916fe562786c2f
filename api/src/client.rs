//! Client construction for components that talk to the API server (feature `client`).

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("read kubeconfig {path}: {source}")]
    Kubeconfig { path: String, source: kube::config::KubeconfigError },
    #[error("build client from {path}: {source}")]
    Client { path: String, source: kube::Error },
}

/// A kube client that trusts the cluster CA and presents the credential of the kubeconfig at `path`.
pub async fn from_kubeconfig(path: &Path) -> Result<kube::Client, ClientError> {
    let shown = path.display().to_string();
    let kc = kube::config::Kubeconfig::read_from(path)
        .map_err(|source| ClientError::Kubeconfig { path: shown.clone(), source })?;
    let mut config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|source| ClientError::Kubeconfig { path: shown.clone(), source })?;
    // Watches may stay open for as long as the server allows; the default read timeout would
    // cut them short.
    config.read_timeout = None;
    kube::Client::try_from(config).map_err(|source| ClientError::Client { path: shown, source })
}
