//! `gitops-test-apiserver`: runs the test API server by itself, for trying the plugin by hand.
//! Prints a kubeconfig (admin token) on stdout and serves until stdin closes.

use std::io::Read as _;

fn main() -> anyhow::Result<()> {
    let server = gitops_e2e::apiserver::TestApiServer::start()?;
    print!("{}", server.kubeconfig("admin-token", "default"));
    eprintln!("serving on {}; close stdin (Ctrl-D) to stop", server.url());
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    Ok(())
}
