//! Colour on stdout for `diff` and `status`: one decision for the whole process, from the global
//! `--color auto|always|never` flag, then (for `auto`) from anstream's reading of the environment
//! — `NO_COLOR`, `CLICOLOR`, `CLICOLOR_FORCE`, `TERM=dumb` — and whether stdout is a terminal, so
//! every command agrees with clap's own help output and with the conventions users set once.

use anstream::{AutoStream, ColorChoice};
use anstyle::{AnsiColor, Style};
use gitops_shared::health::HealthStatus;

/// The `--color` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorMode {
    /// Colour when stdout is a terminal and neither `NO_COLOR` nor `CLICOLOR=0` is set.
    #[default]
    Auto,
    /// Always colour (`NO_COLOR` is ignored: the flag is the more specific request).
    Always,
    /// Never colour.
    Never,
}

/// Records the flag for the process (anstream's global choice, which clap's help honours too).
pub fn set_mode(mode: ColorMode) {
    let choice = match mode {
        ColorMode::Auto => ColorChoice::Auto,
        ColorMode::Always => ColorChoice::Always,
        ColorMode::Never => ColorChoice::Never,
    };
    choice.write_global();
}

/// Whether what is written to stdout should carry colour.
pub fn stdout_enabled() -> bool {
    AutoStream::choice(&std::io::stdout()) != ColorChoice::Never
}

/// Styles, or none of them when colour is off, so callers paint unconditionally.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    enabled: bool,
}

/// Lines the cluster has and Git does not.
pub const REMOVED: Style = AnsiColor::Red.on_default();
/// Lines Git has and the cluster does not.
pub const ADDED: Style = AnsiColor::Green.on_default();
/// Hunk headers.
pub const HUNK: Style = AnsiColor::Cyan.on_default();
/// File headers and table headings.
pub const HEADING: Style = Style::new().bold();
/// Good news (Synced, Healthy).
pub const GOOD: Style = AnsiColor::Green.on_default();
/// Work under way (Progressing) or a difference to look at (OutOfSync).
pub const WARN: Style = AnsiColor::Yellow.on_default();
/// Something a person must fix (Degraded, Missing).
pub const BAD: Style = AnsiColor::Red.on_default().bold();
/// Secondary text (tree lines, unknown states).
pub const DIM: Style = Style::new().dimmed();

impl Palette {
    /// A palette that paints when `enabled`.
    pub fn new(enabled: bool) -> Palette {
        Palette { enabled }
    }

    /// The palette for stdout, as [`stdout_enabled`] decides.
    pub fn stdout() -> Palette {
        Palette::new(stdout_enabled())
    }

    /// Whether it paints.
    pub fn enabled(self) -> bool {
        self.enabled
    }

    /// `text` in `style` (as it is when colour is off).
    pub fn paint(self, style: Style, text: &str) -> String {
        if self.enabled {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }

    /// The style of a health verdict.
    pub fn health_style(status: HealthStatus) -> Style {
        match status {
            HealthStatus::Healthy => GOOD,
            HealthStatus::Progressing => WARN,
            HealthStatus::Degraded | HealthStatus::Missing => BAD,
            HealthStatus::Unknown => DIM,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paints_only_when_enabled() {
        assert_eq!(Palette::new(false).paint(BAD, "Degraded"), "Degraded");
        assert_eq!(
            Palette::new(true).paint(BAD, "Degraded"),
            "\x1b[1m\x1b[31mDegraded\x1b[0m"
        );
    }
}
