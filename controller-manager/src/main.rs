//! `skiff-controller-manager`: the controller-manager as its own process, connecting with a kubeconfig.
fn main() -> std::process::ExitCode {
    controller_manager::standalone::main()
}
