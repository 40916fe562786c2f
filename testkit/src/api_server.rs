//! [`ServerProcess`] for async tests: started off the runtime's threads, with a kube client
//! carrying the admin credential.

use std::ops::{Deref, DerefMut};

use kube::Client;

use crate::server::{ServerOptions, ServerProcess};

/// A running `skiff server` (by default the API server alone: its scheduler and
/// controller-manager are off, so only the component under test acts) and an admin `client`.
/// Dereferences to the [`ServerProcess`]; killed on drop.
pub struct ApiServer {
    process: ServerProcess,
    pub client: Client,
}

impl ApiServer {
    /// Starts a server with the default options and waits until it is ready.
    pub async fn start() -> ApiServer {
        ApiServer::start_with(ServerOptions::new()).await
    }

    /// Starts a server with `opts` and waits until it is ready.
    pub async fn start_with(opts: ServerOptions) -> ApiServer {
        // The start blocks (spawn, readiness probes): keep it off the test's runtime threads.
        let process = match tokio::task::spawn_blocking(move || opts.start()).await {
            Ok(p) => p,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("starting the server: {e}"),
            },
        };
        let client = api::client::from_kubeconfig(process.kubeconfig())
            .await
            .unwrap_or_else(|e| panic!("client from {}: {e}", process.kubeconfig().display()));
        ApiServer { process, client }
    }
}

impl Deref for ApiServer {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.process
    }
}

impl DerefMut for ApiServer {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}
