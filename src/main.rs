//! `skiff`: the all-in-one binary. Clap dispatch only; every command is a library call.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "skiff", version, about = "A small, fast, Kubernetes-compatible container orchestrator")]
struct Cli {
    /// Where skiff keeps its state.
    #[arg(long, global = true, default_value = "/var/lib/skiff")]
    data_dir: PathBuf,
    /// Kubeconfig of a component that connects to an existing server.
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// Log verbosity: 0 info, 1 debug, 2+ trace (RUST_LOG overrides).
    #[arg(short = 'v', long = "v", global = true, default_value_t = 0)]
    verbosity: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a control plane (API server, scheduler, controller-manager) and a node for this host.
    Server(Box<ServerArgs>),
    /// Join this machine to a cluster as a node (`--runtime fake --count N`: N hollow nodes).
    Agent(Box<AgentArgs>),
    /// The project's own CLI (not available yet; use the real kubectl with <data-dir>/kubeconfig.yaml).
    Kubectl,
    /// The node's image store under --data-dir (safe while the agent runs).
    #[command(subcommand)]
    Images(kubelet::images_cmd::ImagesCommand),
}

#[derive(Debug, clap::Args)]
struct AgentArgs {
    #[command(flatten)]
    kubelet: kubelet::Opts,
}

#[derive(Debug, clap::Args)]
struct ServerArgs {
    #[command(flatten)]
    api: apiserver::Opts,
    /// Do not run a node agent on this host.
    #[arg(long)]
    disable_agent: bool,
    /// Components not to run: scheduler, controller-manager, proxy.
    #[arg(long, value_delimiter = ',')]
    disable: Vec<String>,
    /// This host's node (`--node-name`, `--node-ip`, `--runtime`, … as `skiff agent` takes them).
    #[command(flatten)]
    kubelet: kubelet::Opts,
    #[command(flatten)]
    controllers: controller_manager::Opts,
    #[command(flatten)]
    scheduler: scheduler::Opts,
    /// External etcd endpoints for the HA store (not available yet: the embedded store is used).
    #[arg(long)]
    datastore_endpoint: Option<String>,
}

impl Cli {
    #[cfg(test)]
    fn try_parse_from_args(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(args)
    }
}

fn main() -> ExitCode {
    // The hidden `skiff shim …` (started by the kubelet for each container) must stay
    // single-threaded until it forks: dispatched before anything else runs.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("shim") {
        let code = kubelet::runtime::linux::shim::main(&args[2..]);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    init_tracing(cli.verbosity);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbosity: u8) {
    api::process::init_tracing(match verbosity {
        0 => "info",
        1 => "debug",
        _ => "trace",
    });
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Images(cmd) = cli.command {
        let out = kubelet::images_cmd::run(&cli.data_dir, cmd)?;
        if !out.is_empty() {
            println!("{}", out.trim_end());
        }
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Server(args) => runtime.block_on(server(cli.data_dir, *args)),
        Command::Agent(args) => runtime.block_on(agent(cli.data_dir, cli.kubeconfig, *args)),
        Command::Images(_) => Ok(()),
        Command::Kubectl => {
            anyhow::bail!(
                "`skiff kubectl` is not available in this version; use kubectl --kubeconfig <data-dir>/kubeconfig.yaml"
            )
        }
    }
}

async fn server(data_dir: PathBuf, args: ServerArgs) -> anyhow::Result<()> {
    for d in &args.disable {
        if !matches!(d.as_str(), "scheduler" | "controller-manager" | "proxy") {
            anyhow::bail!("--disable {d:?}: want scheduler, controller-manager or proxy");
        }
    }
    if args.datastore_endpoint.is_some() {
        anyhow::bail!("--datastore-endpoint: the etcd backend is not available in this version");
    }
    let shutdown = api::process::shutdown_on_signal();
    let ready = apiserver::ReadySignal::default();
    let kubeconfig = data_dir.join("kubeconfig.yaml");
    let mut api_server = tokio::spawn(apiserver::run(
        args.api,
        apiserver::Context { data_dir: data_dir.clone() },
        ready.clone(),
        shutdown.clone(),
    ));
    tokio::select! {
        _ = ready.wait() => {}
        r = &mut api_server => return flatten(r),
    }
    // The other components talk to the API like any client, with the admin credential.
    let mut components = tokio::task::JoinSet::new();
    let node_failure = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let enabled = |name: &str| !args.disable.iter().any(|d| d == name);
    if enabled("scheduler") || enabled("controller-manager") {
        let client = api::client::from_kubeconfig(&kubeconfig).await?;
        // One shared informer per kind for both: one watch of Pods in this process, not two.
        let mut informers = client_runtime::Informers::new();
        if enabled("scheduler") {
            let scheduling = scheduler::start(args.scheduler, client.clone(), &mut informers, shutdown.clone());
            components.spawn(scheduling);
        }
        if enabled("controller-manager") {
            let controllers = controller_manager::start(args.controllers, client.clone(), &mut informers);
            let stop = shutdown.clone();
            components.spawn(async move {
                tokio::select! {
                    _ = controllers => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
        informers.start(&client, &shutdown);
    }
    if !args.disable_agent {
        // This host's node: a kubelet like `skiff agent`'s, with the admin credential and a serving
        // certificate from the cluster CA (unless one is given).
        let mut opts = args.kubelet;
        if opts.tls_cert_file.is_none() {
            let name = opts.node_name.clone().unwrap_or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_lowercase())
                    .unwrap_or_default()
            });
            let ips: Vec<std::net::IpAddr> = opts.node_ip.into_iter().collect();
            let (cert, key) = apiserver::issue_kubelet_serving_cert(&data_dir, &name, &ips)?;
            opts.tls_cert_file = Some(cert);
            opts.tls_private_key_file = Some(key);
        }
        let (kubeconfig, data_dir, stop) = (kubeconfig.clone(), data_dir.clone(), shutdown.clone());
        let node_failed = shutdown.clone();
        let failure = node_failure.clone();
        components.spawn(async move {
            if let Err(e) = kubelet::run(opts, &kubeconfig, &data_dir, stop).await {
                tracing::error!(error = %e, "the node agent failed; stopping the server");
                *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                node_failed.cancel();
            }
        });
    }
    let result = api_server.await;
    if let Some(e) = node_failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        anyhow::bail!("the node agent failed: {e}");
    }
    shutdown.cancel();
    components.shutdown().await;
    flatten(result)
}

fn flatten(r: Result<Result<(), apiserver::Error>, tokio::task::JoinError>) -> anyhow::Result<()> {
    Ok(r??)
}

async fn agent(data_dir: PathBuf, kubeconfig: Option<PathBuf>, args: AgentArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let kubeconfig = kubeconfig
        .context("`skiff agent` needs --kubeconfig (the --server/--token-file join flow is not available yet)")?;
    let shutdown = api::process::shutdown_on_signal();
    kubelet::run(args.kubelet, &kubeconfig, &data_dir, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Flattened component flags must not collide (clap checks names, ids and groups).
    #[test]
    fn command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn server_flags_parse() {
        let cli = super::Cli::try_parse_from_args(&[
            "skiff",
            "server",
            "--data-dir",
            "/tmp/x",
            "--port",
            "7443",
            "--disable-agent",
            "--disable",
            "scheduler",
            "--node-monitor-grace-period",
            "4s",
            "--cluster-cidr",
            "10.1.0.0/16",
        ]);
        assert!(cli.is_ok(), "{cli:?}");
    }
}
