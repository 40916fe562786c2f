//! `skiff-scheduler`: the scheduler as its own process, connecting with a kubeconfig.
fn main() -> std::process::ExitCode {
    scheduler::standalone::main()
}
