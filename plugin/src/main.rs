//! `kubectl-gitops`: the binary's edge. Everything else lives in the library.

fn main() -> std::process::ExitCode {
    kubectl_gitops::cli::main()
}
