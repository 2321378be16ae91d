//! Shell completion: `kubectl gitops completion bash|zsh|fish` prints a script (clap_complete),
//! and the hidden `__complete` command answers kubectl's plugin completion protocol (kubectl ≥ 1.26
//! runs `kubectl_complete-gitops`, which calls it): candidates one per line, then `:<directive>`.

use std::io::Write;

use clap::{Args, Command, CommandFactory as _};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::exit;

/// Cobra's ShellCompDirectiveNoFileComp: do not fall back to file names.
const NO_FILE_COMPLETION: u8 = 4;

/// Flags of `completion`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  source <(kubectl gitops completion bash)\n  kubectl gitops completion zsh > \"${fpath[1]}/_kubectl-gitops\"\n  kubectl gitops completion fish > ~/.config/fish/completions/kubectl-gitops.fish"
)]
pub struct CompletionArgs {
    /// The shell to print a completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Flags of the hidden `__complete` command.
#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// The words after `kubectl gitops`, the last one being completed (may be empty).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub words: Vec<String>,
}

/// Runs `completion`.
pub fn run(args: &CompletionArgs) -> anyhow::Result<u8> {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "kubectl-gitops",
        &mut std::io::stdout(),
    );
    Ok(exit::OK)
}

/// Runs `__complete`.
pub fn run_complete(args: &CompleteArgs) -> anyhow::Result<u8> {
    let command = Cli::command();
    let mut words: Vec<&str> = args.words.iter().map(String::as_str).collect();
    while words.first() == Some(&"__complete") {
        words.remove(0);
    }
    let candidates = complete(&command, &words);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for candidate in candidates {
        writeln!(out, "{candidate}")?;
    }
    writeln!(out, ":{NO_FILE_COMPLETION}")?;
    Ok(exit::OK)
}

/// Completion candidates for `words`, whose last element is the word being typed.
pub fn complete(root: &Command, words: &[&str]) -> Vec<String> {
    let (partial, before) = match words.split_last() {
        Some((last, before)) => (*last, before),
        None => ("", &[][..]),
    };
    let mut command = root;
    for word in before {
        if let Some(sub) = command.get_subcommands().find(|s| s.get_name() == *word) {
            command = sub;
        }
    }
    let mut out = Vec::new();
    if partial.starts_with('-') {
        for arg in command.get_arguments() {
            if arg.is_hide_set() {
                continue;
            }
            if let Some(long) = arg.get_long() {
                let flag = format!("--{long}");
                if flag.starts_with(partial) {
                    out.push(flag);
                }
            }
        }
    } else {
        for sub in command.get_subcommands() {
            if !sub.is_hide_set() && sub.get_name().starts_with(partial) {
                out.push(sub.get_name().to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_commands_and_flags() {
        let command = Cli::command();
        let top = complete(&command, &[""]);
        for expected in ["render", "sync", "diff", "status", "completion"] {
            assert!(top.iter().any(|c| c == expected), "{expected} in {top:?}");
        }
        assert!(!top.iter().any(|c| c == "__complete"));
        assert_eq!(complete(&command, &["sy"]), ["sync"]);
        let flags = complete(&command, &["sync", "--pr"]);
        assert_eq!(flags, ["--prune"]);
    }
}
